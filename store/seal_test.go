package store_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// Ids of the test keys, computed outside Go (printf KEY | sha256sum) so the
// test does not check KeyID against itself.
const (
	testKeyID = "3eb1bd43" // testutil.Key
	zeroKeyID = "66687aad" // 32 zero bytes
)

// sealV1 seals the way the code before key rotation did, so the test proves
// that values already in databases keep opening.
func sealV1(t *testing.T, key []byte, plaintext string) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	buf := make([]byte, aead.NonceSize())
	_, err = rand.Read(buf)
	require.NoError(t, err)
	buf = aead.Seal(buf, buf, []byte(plaintext), nil)
	return "v1:" + base64.StdEncoding.EncodeToString(buf)
}

func TestKeyID(t *testing.T) {
	assert.Equal(t, testKeyID, store.KeyID(testutil.Key))
	assert.Equal(t, zeroKeyID, store.KeyID(make([]byte, 32)))
	// Of the raw bytes, not of their base64 text.
	assert.NotEqual(t, testKeyID, store.KeyID([]byte(base64.StdEncoding.EncodeToString(testutil.Key))))
}

func TestSealerV2RoundTrip(t *testing.T) {
	s, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	a, err := s.Seal("hunter2")
	require.NoError(t, err)
	b, err := s.Seal("hunter2")
	require.NoError(t, err)
	assert.NotEqual(t, a, b, "fresh nonce per seal")
	assert.NotContains(t, a, "hunter2")

	payload, ok := strings.CutPrefix(a, "v2:"+testKeyID+":")
	require.True(t, ok, "v2:<kid>: prefix, got %q", a)
	raw, err := base64.StdEncoding.DecodeString(payload)
	require.NoError(t, err)
	assert.Len(t, raw, 12+len("hunter2")+16, "nonce ‖ ciphertext ‖ tag")

	for _, v := range []string{a, b} {
		plain, err := s.Open(v)
		require.NoError(t, err)
		assert.Equal(t, "hunter2", plain)
	}
	empty, err := s.Seal("")
	require.NoError(t, err)
	plain, err := s.Open(empty)
	require.NoError(t, err)
	assert.Empty(t, plain)
}

func TestSealerOpensWithPreviousKeys(t *testing.T) {
	oldKey := make([]byte, 32)
	newKey := []byte("another key, 32 bytes long!!!!!!")
	before, err := store.NewSealer(oldKey)
	require.NoError(t, err)
	sealedV2, err := before.Seal("hunter2")
	require.NoError(t, err)
	sealedV1Old := sealV1(t, oldKey, "legacy-old")
	sealedV1New := sealV1(t, newKey, "legacy-new")

	after, err := store.NewSealer(newKey, []byte("0123456789abcdef0123456789abcdef"), oldKey, oldKey)
	require.NoError(t, err, "duplicate previous keys are fine")
	for sealed, want := range map[string]string{
		sealedV2:                                 "hunter2",
		sealedV1Old:                              "legacy-old",
		sealedV1New:                              "legacy-new",
		sealV1(t, testutil.Key, "legacy-middle"): "legacy-middle",
	} {
		plain, err := after.Open(sealed)
		require.NoError(t, err, sealed)
		assert.Equal(t, want, plain)
	}

	// Re-sealing moves a value to the current key.
	resealed, err := after.Seal("hunter2")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(resealed, "v2:"+store.KeyID(newKey)+":"))
	_, err = before.Open(resealed)
	require.ErrorIs(t, err, store.ErrSeal, "the old key alone cannot open a value under the new one")
	assert.ErrorContains(t, err, "no configured key has id "+store.KeyID(newKey))

	// The current key may also be listed as previous.
	same, err := store.NewSealer(newKey, newKey)
	require.NoError(t, err)
	plain, err := same.Open(resealed)
	require.NoError(t, err)
	assert.Equal(t, "hunter2", plain)
}

func TestSealerRefuses(t *testing.T) {
	s, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	a, err := s.Seal("hunter2")
	require.NoError(t, err)
	payload := strings.TrimPrefix(a, "v2:"+testKeyID+":")

	tamperedPayload := []byte(a)
	tamperedPayload[len(a)-5] ^= 1
	unknown, err := store.NewSealer(make([]byte, 32))
	require.NoError(t, err)
	underOther, err := unknown.Seal("hunter2")
	require.NoError(t, err)

	for name, v := range map[string]string{
		"tampered payload":    string(tamperedPayload),
		"v2 under another id": "v2:" + zeroKeyID + ":" + payload,
		"unknown key":         underOther,
		"v1 under no key":     sealV1(t, make([]byte, 32), "hunter2"),
		"no prefix":           payload,
		"v2 without kid":      "v2:" + payload,
		"v2 short kid":        "v2:3eb1bd4:" + payload,
		"v2 upper-case kid":   "v2:3EB1BD43:" + payload,
		"v3":                  "v3:" + testKeyID + ":" + payload,
		"bad base64":          "v2:" + testKeyID + ":!!!",
		"too short":           "v2:" + testKeyID + ":" + base64.StdEncoding.EncodeToString([]byte("short")),
		"v1 too short":        "v1:" + base64.StdEncoding.EncodeToString([]byte("short")),
		"empty":               "",
	} {
		plain, err := s.Open(v)
		assert.ErrorIs(t, err, store.ErrSeal, name)
		assert.Empty(t, plain, name)
		if err != nil {
			assert.NotContains(t, err.Error(), "hunter2", name)
		}
	}

	_, err = store.NewSealer(make([]byte, 31))
	assert.ErrorContains(t, err, "key must be 32 bytes, got 31")
	_, err = store.NewSealer(testutil.Key, make([]byte, 32), []byte("short"))
	assert.ErrorContains(t, err, "previous key 2 must be 32 bytes, got 5")
}

func TestSealerCurrent(t *testing.T) {
	oldKey := make([]byte, 32)
	old, err := store.NewSealer(oldKey)
	require.NoError(t, err)
	s, err := store.NewSealer(testutil.Key, oldKey)
	require.NoError(t, err)
	current, err := s.Seal("hunter2")
	require.NoError(t, err)
	underOld, err := old.Seal("hunter2")
	require.NoError(t, err)

	assert.True(t, s.Current(current), "v2 under the current key")
	for name, v := range map[string]string{
		"v2 under a previous key":  underOld,
		"v1 under the current key": sealV1(t, testutil.Key, "hunter2"),
		"v1 under a previous key":  sealV1(t, oldKey, "hunter2"),
		"garbage":                  "not sealed",
		"empty":                    "",
		"kid without separator":    "v2:" + testKeyID,
	} {
		assert.False(t, s.Current(v), name)
	}
	assert.True(t, old.Current(underOld), "current is relative to the sealer")
}
