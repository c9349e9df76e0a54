package api

import (
	"encoding/json"
	"testing"
)

// FuzzStrictJSON holds the hand-written scanner to encoding/json: it
// never passes a text json.Valid rejects, and never calls a valid text
// invalid JSON (its other findings are what json lets through).
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":1}`, `{"a":[1,2,{"b":null}]}`, `"x"`, `-0.5e+10`, `{"a":"\u00e9\ud83c\udfed"}`,
		`{"a":1}}`, `{"a":1,"a":2}`, `[1,]`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `01`, `1.`, `1e`, `tru`, `{"a" 1}`, " {\"k\":\t[ ]} "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := strictJSON(b)
		if d == nil && !json.Valid(b) {
			t.Fatalf("passed invalid JSON %q", b)
		}
		if d != nil && d.Message == "is not valid JSON" && json.Valid(b) {
			t.Fatalf("called valid JSON %q invalid", b)
		}
	})
}
