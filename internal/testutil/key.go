package testutil

import "encoding/base64"

// Key is the ENCRYPTION_KEY every test uses: 32 bytes, so it seals like a
// real one. It protects nothing; never use it outside tests.
var Key = []byte("0123456789abcdef0123456789abcdef")

// KeyBase64 is Key as the ENCRYPTION_KEY variable spells it.
var KeyBase64 = base64.StdEncoding.EncodeToString(Key)
