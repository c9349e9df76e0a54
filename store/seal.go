package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// sealPrefix names the key version. A future key rotation adds "v2:" and
// keeps opening "v1:" with the old key.
const sealPrefix = "v1:"

// ErrSeal reports a sealed value that cannot be opened: tampered, sealed
// with another key, or not sealed at all. It never carries the plaintext.
var ErrSeal = errors.New("sealed value cannot be opened")

// Sealer encrypts gateway passwords with AES-256-GCM. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer takes the 32-byte key from ENCRYPTION_KEY.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("sealer: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal returns "v1:" + base64(nonce ‖ ciphertext ‖ tag) with a fresh random
// 96-bit nonce, so two seals of one password differ.
func (s *Sealer) Seal(plaintext string) (string, error) {
	buf := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	buf = s.aead.Seal(buf, buf, []byte(plaintext), nil)
	return sealPrefix + base64.StdEncoding.EncodeToString(buf), nil
}

// Open reverses Seal. Any tampering or a wrong key gives ErrSeal.
func (s *Sealer) Open(sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", fmt.Errorf("%w: unknown key version", ErrSeal)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", fmt.Errorf("%w: malformed", ErrSeal)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return "", fmt.Errorf("%w: authentication failed (tampered or wrong key)", ErrSeal)
	}
	return string(plain), nil
}
