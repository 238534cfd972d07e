package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// loadLinkKey returns the key that signs export download links: the key
// given (VERITRAIL_LINK_KEY, checked by its setting), else <data>/link-key,
// created on first start (0600). Changing it invalidates every link handed
// out.
func loadLinkKey(dataDir, given string) ([]byte, error) {
	if given != "" {
		return []byte(given), nil
	}
	path := filepath.Join(dataDir, "link-key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := make([]byte, 32)
		rand.Read(k)
		enc := hex.EncodeToString(k)
		if err := createSecretFile(path, enc+"\n"); err != nil {
			return nil, fmt.Errorf("create the link key: %w", err)
		}
		return []byte(enc), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return []byte(strings.TrimSpace(string(b))), nil
}
