package store

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Sealed value formats. "v1:" values were written before key rotation and
// carry no key id, so opening one means trying every configured key;
// "v2:<kid>:" names the key it was sealed under, so rotation can tell at a
// glance which values still need re-sealing.
const (
	prefixV1  = "v1:"
	prefixV2  = "v2:"
	keyIDLen  = 8 // hex digits of SHA-256 kept as the key id
	keyLength = 32
)

// ErrSeal reports a sealed value that cannot be opened: tampered, sealed
// with a key that is not configured, or not sealed at all. It never carries
// the plaintext.
var ErrSeal = errors.New("sealed value cannot be opened")

// KeyID names a key without revealing it: the first 8 lowercase hex digits
// of SHA-256 of the raw key bytes (not of their base64 text), as API.md §10
// specifies. Operators can compute it themselves to see which key a
// "v2:<kid>:" value needs.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:])[:keyIDLen]
}

// sealKey is one configured key, ready to use.
type sealKey struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

// Sealer encrypts gateway passwords with AES-256-GCM under the current key
// and opens values sealed under the current or any previous key, so keys
// can be rotated without a flag day. It is safe for concurrent use.
type Sealer struct {
	// keys holds the current key first, then the previous ones in the order
	// given, without duplicates.
	keys []sealKey
}

// NewSealer takes the 32-byte current key (ENCRYPTION_KEY), which seals and
// opens, and any previous keys (ENCRYPTION_KEYS_PREVIOUS), which only open.
// A previous key equal to the current one or to another previous key is
// harmless: operators rotating in steps often leave one in both places.
func NewSealer(current []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	add := func(name string, raw []byte) error {
		if len(raw) != keyLength {
			return fmt.Errorf("sealer: %s must be %d bytes, got %d", name, keyLength, len(raw))
		}
		for _, k := range s.keys {
			if bytes.Equal(k.raw, raw) {
				return nil
			}
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return fmt.Errorf("sealer: %s: %w", name, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("sealer: %s: %w", name, err)
		}
		s.keys = append(s.keys, sealKey{id: KeyID(raw), raw: bytes.Clone(raw), aead: aead})
		return nil
	}
	if err := add("key", current); err != nil {
		return nil, err
	}
	for i, raw := range previous {
		if err := add(fmt.Sprintf("previous key %d", i+1), raw); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Seal returns "v2:<kid>:" + base64(nonce ‖ ciphertext ‖ tag) under the
// current key, with a fresh random 96-bit nonce, so two seals of one
// password differ.
func (s *Sealer) Seal(plaintext string) (string, error) {
	k := s.keys[0]
	buf := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	buf = k.aead.Seal(buf, buf, []byte(plaintext), nil)
	return prefixV2 + k.id + ":" + base64.StdEncoding.EncodeToString(buf), nil
}

// Open reverses Seal. A "v2:" value is opened with the key its id names; a
// "v1:" value, which names none, with the current key and then each
// previous key in order. Tampering, a key that is not configured or a value
// that is not sealed gives ErrSeal.
func (s *Sealer) Open(sealed string) (string, error) {
	if rest, ok := strings.CutPrefix(sealed, prefixV2); ok {
		kid, payload, ok := strings.Cut(rest, ":")
		if !ok || !validKeyID(kid) {
			return "", fmt.Errorf("%w: malformed key id", ErrSeal)
		}
		var candidates []sealKey
		for _, k := range s.keys {
			// Ids are 32 bits, so two configured keys may share one; try
			// each, the tag tells the right one.
			if k.id == kid {
				candidates = append(candidates, k)
			}
		}
		if len(candidates) == 0 {
			return "", fmt.Errorf("%w: no configured key has id %s", ErrSeal, kid)
		}
		return open(candidates, payload)
	}
	if payload, ok := strings.CutPrefix(sealed, prefixV1); ok {
		return open(s.keys, payload)
	}
	return "", fmt.Errorf("%w: unknown key version", ErrSeal)
}

// Current reports whether sealed is a "v2:" value under the current key,
// the only form the rekey command leaves alone. It does not open the value.
func (s *Sealer) Current(sealed string) bool {
	return strings.HasPrefix(sealed, prefixV2+s.keys[0].id+":")
}

// open decodes a base64(nonce ‖ ciphertext ‖ tag) payload and opens it with
// the first of keys whose tag checks.
func open(keys []sealKey, payload string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return "", fmt.Errorf("%w: malformed", ErrSeal)
	}
	for _, k := range keys {
		n := k.aead.NonceSize()
		if len(raw) < n+k.aead.Overhead() {
			return "", fmt.Errorf("%w: malformed", ErrSeal)
		}
		if plain, err := k.aead.Open(nil, raw[:n], raw[n:], nil); err == nil {
			return string(plain), nil
		}
	}
	return "", fmt.Errorf("%w: authentication failed (tampered or no configured key)", ErrSeal)
}

// validKeyID reports whether kid has the form KeyID produces.
func validKeyID(kid string) bool {
	if len(kid) != keyIDLen {
		return false
	}
	for _, c := range kid {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// RekeyResult counts what Rekey did.
type RekeyResult struct {
	Resealed int // re-sealed under the current key
	Current  int // already under the current key
	// Unreadable are the gateways whose password no configured key
	// opens; they are left as they are.
	Unreadable []UnreadableGateway
}

// UnreadableGateway names a gateway Rekey could not open: its id (what
// PUT /api/gateways/:id takes) and its gateway_id.
type UnreadableGateway struct {
	ID        uuid.UUID
	GatewayID string
}

// Rekey re-seals every stored gateway password that is not under the
// current key (v1 values, or v2 under a previous key), batch rows per
// transaction. It is resumable: an interrupted run leaves every batch it
// finished done, and a new run skips what is current. Deleted gateways'
// passwords are re-sealed too (the old key may be the one that leaked),
// but one no key opens is not listed and fails nothing: it can never be
// set again, and it would fail every run. A row changed
// meanwhile (a PUT with a new password) is left to that change. progress,
// if not nil, sees the running counts after each committed batch.
func (s *Store) Rekey(ctx context.Context, batch int, progress func(RekeyResult)) (RekeyResult, error) {
	var res RekeyResult
	after := uuid.Nil
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("rekey interrupted: %w", err)
		}
		rows, _ := s.pool.Query(ctx, `SELECT id, gateway_id, password_encrypted, deleted_at IS NOT NULL FROM gateways
			WHERE id > $1 ORDER BY id LIMIT $2`,
			after, batch)
		list, err := pgx.CollectRows(rows, scanRekeyRow)
		if err != nil {
			return res, fmt.Errorf("rekey: %w", classify(err))
		}
		if len(list) == 0 {
			return res, nil
		}
		after = list[len(list)-1].id
		// A row another process wrote between the read and the
		// conditional UPDATE is left as that process wrote it, and read
		// again: counted re-sealed though nothing was written, a value
		// set meanwhile under a previous key stayed there, and rekey
		// exited 0 (found by an audit, helper 7).
		for attempt := 0; len(list) > 0; attempt++ {
			if attempt == rekeyAttempts {
				return res, fmt.Errorf("rekey: %d passwords changed under another process %d times in a row; run rekey again once every gatewayd uses the new key", len(list), rekeyAttempts)
			}
			raced, err := s.reseal(ctx, list, &res)
			if err != nil {
				return res, err
			}
			if len(raced) == 0 {
				break
			}
			rows, _ := s.pool.Query(ctx, `SELECT id, gateway_id, password_encrypted, deleted_at IS NOT NULL FROM gateways
				WHERE id = ANY($1) ORDER BY id`, raced)
			if list, err = pgx.CollectRows(rows, scanRekeyRow); err != nil {
				return res, fmt.Errorf("rekey: %w", classify(err))
			}
		}
		if progress != nil {
			progress(res)
		}
	}
}

// rekeyAttempts bounds how often Rekey reads again a row that keeps
// changing under it.
const rekeyAttempts = 10

type rekeyRow struct {
	id        uuid.UUID
	gatewayID string
	sealed    string
	deleted   bool
}

func scanRekeyRow(r pgx.CollectableRow) (rekeyRow, error) {
	var x rekeyRow
	return x, r.Scan(&x.id, &x.gatewayID, &x.sealed, &x.deleted)
}

// reseal re-seals the rows of list not under the current key, counting
// into res what it found and what it wrote, and returns the ids of those
// another process changed since they were read (not written).
func (s *Store) reseal(ctx context.Context, list []rekeyRow, res *RekeyResult) ([]uuid.UUID, error) {
	b := &pgx.Batch{}
	var queued []uuid.UUID
	for _, x := range list {
		// Opened even when it names the current key: a value under
		// the current key's id that does not open (corrupt, tampered
		// with, a key id collision) was counted current and left
		// out of the list of what no key opens (found by an audit,
		// helper 4).
		plain, err := s.sealer.Open(x.sealed)
		if err != nil {
			if !x.deleted {
				res.Unreadable = append(res.Unreadable, UnreadableGateway{ID: x.id, GatewayID: x.gatewayID})
			}
			continue
		}
		if s.sealer.Current(x.sealed) {
			res.Current++
			continue
		}
		resealed, err := s.sealer.Seal(plain)
		if err != nil {
			return nil, fmt.Errorf("rekey: %w", err)
		}
		b.Queue(`UPDATE gateways SET password_encrypted = $3 WHERE id = $1 AND password_encrypted = $2`, x.id, x.sealed, resealed)
		queued = append(queued, x.id)
	}
	if len(queued) == 0 {
		return nil, nil
	}
	var raced []uuid.UUID
	written := 0
	// A re-sealed password is no client's change: updated_at stays
	// (migration 010).
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		raced, written = raced[:0], 0
		if _, err := tx.Exec(ctx, `SELECT set_config('gatewayd.keep_updated_at', 'on', true)`); err != nil {
			return err
		}
		br := tx.SendBatch(ctx, b)
		for _, id := range queued {
			tag, err := br.Exec()
			if err != nil {
				_ = br.Close()
				return err
			}
			if tag.RowsAffected() == 0 {
				raced = append(raced, id)
			} else {
				written++
			}
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("rekey: %w", classify(err))
	}
	res.Resealed += written
	return raced, nil
}
