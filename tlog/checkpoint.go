package tlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Key is an installation's Ed25519 log key. Every organization's log signs
// its checkpoints with it, under a key name equal to the log's origin, as
// C2SP tlog-checkpoint recommends; verifier keys therefore differ per
// organization (the name is part of the key hash) though the key is one.
type Key struct {
	seed []byte
	pub  ed25519.PublicKey
}

// keyFileName is the key name in the key file; signers are derived per origin.
const keyFileName = "veritrail"

// GenerateKey returns a new random key.
func GenerateKey() (*Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Key{seed: priv.Seed(), pub: pub}, nil
}

// ParseKey reads a key in the signed-note private key form
// (PRIVATE+KEY+name+hash+base64), as written by Encode.
func ParseKey(text string) (*Key, error) {
	text = strings.TrimSpace(text)
	parts := strings.SplitN(text, "+", 5) // the base64 key may contain '+'
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, errors.New("not a signed-note private key (PRIVATE+KEY+name+hash+key)")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("not an Ed25519 signed-note private key")
	}
	// Let the note package validate the whole string (name, hash).
	if _, err := note.NewSigner(text); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	return &Key{seed: raw[1:], pub: priv.Public().(ed25519.PublicKey)}, nil
}

// Encode returns the key in signed-note private key form, for the key file.
func (k *Key) Encode() string {
	s, err := k.signerKey(keyFileName)
	if err != nil {
		panic(err)
	}
	return s
}

// VerifierKey returns the signed-note verifier key of the log with this
// origin: origin+hash+base64(0x01 ‖ public key).
func (k *Key) VerifierKey(origin string) (string, error) {
	return note.NewEd25519VerifierKey(origin, k.pub)
}

func (k *Key) signerKey(name string) (string, error) {
	vkey, err := note.NewEd25519VerifierKey(name, k.pub)
	if err != nil {
		return "", fmt.Errorf("log origin %q cannot name a key: %w", name, err)
	}
	hash := strings.SplitN(vkey, "+", 3)[1]
	return "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, k.seed...)), nil
}

// SignCheckpoint returns the signed C2SP checkpoint of a log.
func (k *Key) SignCheckpoint(origin string, size uint64, root []byte) ([]byte, error) {
	skey, err := k.signerKey(origin)
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	text := log.Checkpoint{Origin: origin, Size: size, Hash: root}.Marshal()
	return note.Sign(&note.Note{Text: string(text)}, signer)
}

// ValidOrigin reports whether s can be a log origin (and so a key name).
func ValidOrigin(s string) bool {
	_, err := note.NewEd25519VerifierKey(s, make(ed25519.PublicKey, ed25519.PublicKeySize))
	return err == nil && !strings.ContainsAny(s, " \n")
}

// VerifierKeyOrigin returns the log origin a signed-note verifier key
// names, or an error if vkey is not one.
func VerifierKeyOrigin(vkey string) (string, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return "", err
	}
	return v.Name(), nil
}

// Checkpoint is a parsed, verified checkpoint.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
}

// OpenCheckpoint verifies a signed checkpoint with a verifier key and
// parses it. The origin must be the verifier key's name.
func OpenCheckpoint(signed []byte, vkey string) (*Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	cp, _, _, err := log.ParseCheckpoint(signed, v.Name(), v)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash}, nil
}

// ParseUnverified parses a checkpoint without checking its signature (to
// show what a bad checkpoint claims).
func ParseUnverified(signed []byte) (*Checkpoint, error) {
	text, _, ok := strings.Cut(string(signed), "\n\n")
	if !ok {
		return nil, errors.New("checkpoint: no signature block")
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(text + "\n")); err != nil {
		return nil, err
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash}, nil
}
