// Package seal encrypts small secrets at rest (sink tokens, API keys, HMAC
// keys) with AES-256-GCM under the installation's master key, so a copy of
// the database alone does not give them away.
//
// The master key is 32 random bytes, kept apart from the database: in the
// file named by VERITRAIL_MASTER_KEY_FILE, or <data>/master-key (mode 0600),
// created on first start. Sealed values are bound to a context (the
// organization and sink they belong to), so one cannot be copied onto
// another sink and opened there.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a master key.
const KeySize = 32

// prefix marks the sealed form's version.
const prefix = "v1:"

// Key seals and opens secrets.
type Key struct {
	aead cipher.AEAD
}

// New returns a Key for a 32-byte master key.
func New(master []byte) (*Key, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("master key: %d bytes, want %d", len(master), KeySize)
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{aead: aead}, nil
}

// Generate returns a new random master key, hex encoded.
func Generate() string {
	b := make([]byte, KeySize)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Parse reads a master key file's contents: 64 hex digits (surrounding
// space ignored).
func Parse(text []byte) (*Key, error) {
	b, err := hex.DecodeString(strings.TrimSpace(string(text)))
	if err != nil || len(b) != KeySize {
		return nil, errors.New("master key: want 64 hex digits (32 bytes)")
	}
	return New(b)
}

// Load reads the master key from path.
func Load(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	k, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreate reads the master key from path, creating it (0600, in a
// directory created 0700 if needed) when it does not exist.
func LoadOrCreate(path string) (*Key, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.WriteString(Generate() + "\n")
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(path)
				return nil, fmt.Errorf("master key: %w", err)
			}
		} else if !errors.Is(err, os.ErrExist) { // lost a race: read the winner's
			return nil, fmt.Errorf("master key: %w", err)
		}
	}
	return Load(path)
}

// Seal encrypts plaintext bound to context, returning printable text.
func (k *Key) Seal(plaintext []byte, context string) string {
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, plaintext, []byte(context))
	return prefix + base64.RawStdEncoding.EncodeToString(out)
}

// ErrOpen is returned for a sealed value that does not open: altered, of
// another context, or sealed under another master key.
var ErrOpen = errors.New("sealed secret does not open (altered, moved, or sealed under another master key)")

// Open decrypts a value made by Seal with the same context.
func (k *Key) Open(sealed, context string) ([]byte, error) {
	body, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return nil, ErrOpen
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(body) // Strict: one text per sealed value
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrOpen
	}
	n := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, b[:n], b[n:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
