package ctc

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeRequests(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ  string
		data any
		want string
	}{
		{TypePostLogin, Login{Email: "a@b.c", Password: "pw"}, `{"Type":"POST_LOGIN","From":"UI","To":"SERV","Data":{"Email":"a@b.c","Password":"pw"}}`},
		{TypeGetDynConnected, nil, `{"Type":"GET_DYN_CONNECTED","From":"UI","To":"SERV","Data":{}}`},
		{TypePostSubChanges, nil, `{"Type":"POST_SUB_CHANGES","From":"UI","To":"SERV","Data":{}}`},
		{TypePostUnsubChanges, nil, `{"Type":"POST_UNSUB_CHANGES","From":"UI","To":"SERV","Data":{}}`},
		{TypeTakeDynReading, TakeReading{Serial: 12345}, `{"Type":"TAKE_DYN_READING","From":"UI","To":"SERV","Data":{"Serial":12345}}`},
	}
	// Strings go as they are: no HTML escaping of a password.
	b, err := Encode(TypePostLogin, Login{Email: "a@b.c", Password: "p<&>w"})
	require.NoError(t, err)
	assert.Equal(t, `{"Type":"POST_LOGIN","From":"UI","To":"SERV","Data":{"Email":"a@b.c","Password":"p<&>w"}}`, string(b))
	for _, tc := range cases {
		b, err := Encode(tc.typ, tc.data)
		require.NoError(t, err)
		assert.JSONEq(t, tc.want, string(b), tc.typ)
		assert.NotContains(t, strings.ToLower(string(b)), "correlation", "never a CorrelationId")
		var back Request
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, tc.typ, back.Type)
	}
}

func TestDecodeExamplesOfTheProtocol(t *testing.T) {
	t.Parallel()
	cases := []struct {
		frame string
		want  Message
	}{
		{`{"Type":"RTN_LOGIN","From":"SERV","Target":"UI","Data":{"Email":"a@b.c","First":"Ann","Last":"Lee","Success":true,"AccessLevel":2,"Verified":true}}`,
			&LoginResult{Email: "a@b.c", First: "Ann", Last: "Lee", Success: true, AccessLevel: Scalar("2"), Verified: Scalar("true")}},
		{`{"Type":"RTN_LOGIN","From":"SERV","Target":"UI","Data":{"Success":false}}`, &LoginResult{}},
		{`{"Type":"RTN_ERR","From":"SERV","Target":"UI","Data":{"Attempt":null,"Error":"Invalid credentials"}}`,
			&ErrorResult{Error: "Invalid credentials"}},
		{`{"Type":"RTN_ERR","From":"SERV","Target":"UI","Data":{"Attempt":"POST_LOGIN","Error":"x"}}`,
			&ErrorResult{Attempt: Scalar(`"POST_LOGIN"`), Error: "x"}},
		// Forms seen from odd firmware: a bare string as RTN_ERR's Data, a
		// number for a name or an attempt, Success as 1 or "true".
		{`{"Type":"RTN_ERR","Data":"Bad password"}`, &ErrorResult{Error: "Bad password"}},
		{`{"Type":"RTN_ERR","Data":{"Attempt":3,"Error":"x"}}`, &ErrorResult{Attempt: Scalar("3"), Error: "x"}},
		{`{"Type":"RTN_LOGIN","Data":{"Success":1,"Last":7}}`, &LoginResult{Success: true, Last: "7"}},
		{`{"Type":"RTN_LOGIN","Data":{"Success":"true"}}`, &LoginResult{Success: true}},
		{`{"Type":"RTN_LOGIN","Data":{"Success":"0"}}`, &LoginResult{}},
		{`{"Type":"NOT_DYN_TEMP","Data":{"Serial":12345,"Temp":"21.5"}}`, &Temperature{Serial: "12345", Temp: Scalar(`"21.5"`)}},
		{`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":[]}`, &DynResult{Data: json.RawMessage(`[]`)}},
		{`{"Type":"NOT_DYN_READING_STARTED","From":"SERV","Target":"UI","Data":{"Serial":12345,"Success":true}}`,
			&ReadingStarted{Serial: "12345", Success: true}},
		{`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":7,"Serial":"12345","Time":"2026-11-29 05:00:00","X":"0.1,0.2","Y":"0.3","Z":"0.4"}}`,
			&Reading{ID: Scalar("7"), Serial: "12345", Time: "2026-11-29 05:00:00", X: "0.1,0.2", Y: "0.3", Z: "0.4"}},
		{`{"Type":"NOT_DYN_TEMP","From":"SERV","Target":"UI","Data":{"Serial":"12345","Temp":21.5}}`,
			&Temperature{Serial: "12345", Temp: Scalar("21.5")}},
		{`{"Type":"NOT_SOMETHING_NEW","From":"SERV","Target":"UI","Data":{"a":1}}`,
			&Unknown{Type: "NOT_SOMETHING_NEW", Data: json.RawMessage(`{"a":1}`)}},
		{`{"Type":"RTN_LOGIN"}`, &LoginResult{}},
		// A tree where a scalar belongs is skipped, not built.
		{`{"Type":"NOT_DYN_TEMP","Data":{"Serial":"1","Temp":[{},{"a":[1,2]}]}}`, &Temperature{Serial: "1"}},
		{`{"Type":"NOT_DYN_READING","Data":{"ID":{"x":1},"Serial":"1"}}`, &Reading{Serial: "1"}},
	}
	for _, tc := range cases {
		got, err := Decode([]byte(tc.frame))
		require.NoError(t, err, tc.frame)
		assert.Equal(t, tc.want, got, tc.frame)
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	for _, frame := range []string{``, `{`, `null`, `[]`, `"RTN_LOGIN"`, `42`, `{"Data":{}}`, `{"Type":5}`,
		`{"Type":"RTN_LOGIN","Data":{"Success":"yes"}}`, `{"Type":"NOT_DYN_TEMP","Data":[1,2]}`, "\xff\xfe"} {
		m, err := Decode([]byte(frame))
		assert.Nil(t, m, frame)
		assert.True(t, errors.Is(err, ErrMalformed), "%q: %v", frame, err)
	}
}

func TestLoginOutcome(t *testing.T) {
	t.Parallel()
	cases := []struct {
		msg    Message
		ok     bool
		reason string
	}{
		{&LoginResult{Success: true}, true, ""},
		{&DynResult{Data: json.RawMessage(`{}`)}, true, ""},
		{&LoginResult{Success: false}, false, "login refused"},
		{&ErrorResult{Error: "Invalid credentials"}, false, "Invalid credentials"},
		{&ErrorResult{}, false, "login refused"},
		{&ErrorResult{Error: "  \t"}, false, "login refused"}, // no blank last_error
		{&Reading{}, false, "unexpected answer to login: NOT_DYN_READING"},
	}
	for _, tc := range cases {
		ok, reason := LoginOutcome(tc.msg)
		assert.Equal(t, tc.ok, ok)
		assert.Equal(t, tc.reason, reason)
	}
}

func TestSensorsBothShapes(t *testing.T) {
	t.Parallel()
	list, skipped, err := Sensors(json.RawMessage(`{"222":{"Serial":222,"Connected":1,"PartNum":"PN-2","ReadRate":20000,"Samples":4096,"Name":"Pump"},"111":{"Connected":0,"Name":"Fan"}}`))
	require.NoError(t, err)
	assert.Zero(t, skipped)
	assert.Equal(t, []Listed{{Serial: 111, Name: "Fan"},
		{Serial: 222, Connected: true, PartNum: "PN-2", ReadRate: ptr(20000.0), Samples: ptr(int64(4096)), Name: "Pump"}}, list)
	list, _, err = Sensors(json.RawMessage(` [] `))
	require.NoError(t, err)
	assert.Empty(t, list, "[] is no sensors")
	// Nothing that says "no sensors" the way a gateway does: an RTN_DYN
	// with no data, or {} (a late answer to another request, more likely),
	// would disconnect every sensor.
	for _, notAList := range []string{`{}`, `null`, ``, `"x"`, `{"1":"x"}`, `{"abc":{"Connected":1,"Name":"no serial"}}`} {
		_, _, err = Sensors(json.RawMessage(notAList))
		assert.ErrorIs(t, err, ErrMalformed, notAList)
	}
}

// SensorsUpTo keeps the lowest serials as it reads and counts the others;
// of one serial's entries the later comes last (the merge takes it), in a
// list as in an object with a key given twice. It reads the list entry by
// entry: garbage after it, or inside it, is still malformed.
func TestSensorsUpToKeepsTheLowestSerials(t *testing.T) {
	t.Parallel()
	list, skipped, dropped, err := SensorsUpTo(json.RawMessage(
		`[{"Serial":5},{"Serial":3,"Name":"first"},7,{"Serial":9},{"Serial":1},{"Serial":3,"Name":"second"},{"Name":"none"},{"Serial":2}]`), 4)
	require.NoError(t, err)
	assert.Equal(t, 2, skipped, "7 is no entry; one has no serial")
	assert.Equal(t, 2, dropped, "5 and 9 are past the lowest four")
	assert.Equal(t, []Listed{{Serial: 1, Connected: true}, {Serial: 2, Connected: true},
		{Serial: 3, Connected: true, Name: "first"}, {Serial: 3, Connected: true, Name: "second"}}, list)

	list, _, dropped, err = SensorsUpTo(json.RawMessage(`{"20":{"Name":"a"},"10":{"Name":"b"},"20":{"Name":"c"},"30":{}}`), 3)
	require.NoError(t, err)
	assert.Equal(t, 1, dropped)
	assert.Equal(t, []Listed{{Serial: 10, Connected: true, Name: "b"}, {Serial: 20, Connected: true, Name: "a"},
		{Serial: 20, Connected: true, Name: "c"}}, list)

	list, _, dropped, err = SensorsUpTo(json.RawMessage(`{"1":{}}`), 0)
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.Equal(t, 1, dropped)

	for _, bad := range []string{`{"1":{}}}`, `[{"Serial":1}]]`, `[{"Serial":1}] x`, `{"1":{} "2":{}}`, `[{"Serial":1},`, `{"1":{"Serial":}}`} {
		_, _, _, err := SensorsUpTo(json.RawMessage(bad), 10)
		assert.ErrorIs(t, err, ErrMalformed, bad)
	}
}

// One odd entry or field costs only itself: the rest of the list counts.
// Fields come as numbers or strings, Connected as 0/1, a boolean or left
// out (the list is of the connected sensors), a whole count as 8192.0; a
// field left out is nil, so the stored value stays.
func TestSensorsReadEntriesLeniently(t *testing.T) {
	t.Parallel()
	list, skipped, err := Sensors(json.RawMessage(`{
		"101":{"Serial":101,"Connected":1,"ReadRate":25600,"Samples":8192},
		"102":{"Serial":102,"Connected":true},
		"103":{"Serial":"103","ReadRate":"100","Samples":8192.0,"Connected":"false","PartNum":42},
		"104":{"Serial":99999999999999999999},
		"abc":{"Connected":1,"Name":"no serial"},
		"105":"not an object",
		"107":{"Serial":0,"Name":"placeholder serial"},
		"106":{"Serial":106,"Samples":1.5,"ReadRate":"fast","Connected":"maybe","Name":{"x":1}}}`))
	require.NoError(t, err)
	assert.Equal(t, 2, skipped, "abc has no serial; 105 is no entry")
	assert.Equal(t, []Listed{
		{Serial: 101, Connected: true, ReadRate: ptr(25600.0), Samples: ptr(int64(8192))},
		{Serial: 102, Connected: true},
		{Serial: 103, Connected: false, PartNum: "42", ReadRate: ptr(100.0), Samples: ptr(int64(8192))},
		{Serial: 104, Connected: true}, // its key, as its Serial is beyond int64
		{Serial: 106, Connected: true},
		{Serial: 107, Connected: true, Name: "placeholder serial"}, // its key, as its Serial is 0
	}, list)
}

func TestTextAndFlag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{`"12"`: 12, `12`: 12, `" 12 "`: 12, `8192.0`: 8192, `"8192.00"`: 8192, `-7`: -7} {
		var x Text
		require.NoError(t, json.Unmarshal([]byte(in), &x))
		n, ok := x.Int64()
		assert.True(t, ok, in)
		assert.Equal(t, want, n, in)
	}
	for _, in := range []string{`1.5`, `"x"`, `null`, `{}`, `[1]`, `1e30`, `1e3`, `true`, `"0x10"`, `"1_000"`, `99999999999999999999`} {
		var x Text
		require.NoError(t, json.Unmarshal([]byte(in), &x), "Text never fails")
		_, ok := x.Int64()
		assert.False(t, ok, in)
	}
	for in, want := range map[string]bool{`true`: true, `"TRUE"`: true, `1`: true, `"0"`: false, `false`: false, `null`: false} {
		var f Flag
		require.NoError(t, json.Unmarshal([]byte(in), &f), in)
		assert.Equal(t, want, bool(f), in)
	}
	// Not a boolean: an error code in Success must not read as true.
	for _, in := range []string{`"yes"`, `{}`, `[]`, `2`, `-1`, `0.5`, `"0x1p0"`} {
		var f Flag
		assert.Error(t, json.Unmarshal([]byte(in), &f), in)
	}
}

func TestIsAnswer(t *testing.T) {
	t.Parallel()
	assert.True(t, IsAnswer(&LoginResult{}))
	assert.True(t, IsAnswer(&ErrorResult{}))
	assert.True(t, IsAnswer(&DynResult{}))
	assert.False(t, IsAnswer(&Reading{}))
	assert.False(t, IsAnswer(&Unknown{Type: "RTN_X"}))
}

// FuzzDecode shows that no frame makes the decoder panic, and that every
// success is a message with a type. Seeds live in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"Type":"RTN_LOGIN","Data":{"Success":true}}`))
	f.Add([]byte(`{"Type":"RTN_DYN","Data":{"1":{"Serial":1}}}`))
	f.Add([]byte(`{"Type":"NOT_DYN_READING","Data":{"Serial":"1","X":"1,2","Y":"[1,2]","Z":"AQACAA=="}}`))
	f.Add([]byte(`{"Type":"NOT_DYN_READING","Data":{"X":"1"},"data":{"Y":"2"}}`))
	f.Add([]byte(` {"type" :"NOT_DYN_READING","From":"SERV","DATA":{"ID":-7.5e1,"Serial":"1","Time":"t","X":"1,2","Y":"[1]","Z":"AQA="}} `))
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error is not ErrMalformed: %v", err)
		}
		// In place, the same message; its samples, when it says so, are
		// the frame's own bytes.
		ip, inPlace, ipErr := DecodeInPlace(frame)
		if (err == nil) != (ipErr == nil) || (err != nil && err.Error() != ipErr.Error()) || !reflect.DeepEqual(m, ip) {
			t.Fatalf("in place gives %#v, %v; Decode %#v, %v", ip, ipErr, m, err)
		}
		if inPlace {
			r := ip.(*Reading)
			for _, axis := range []string{r.X, r.Y, r.Z} {
				if axis != "" && !within(frame, axis) {
					t.Fatalf("in place, but %q is a copy", axis)
				}
			}
		}
		if d, ok := m.(*DynResult); ok {
			_, _, _ = Sensors(d.Data)
		}
		if m != nil {
			_, _ = LoginOutcome(m)
		}
		// The one-pass reading decoder answers only as the envelope would,
		// and so does its hand scanner on a frame without escapes.
		if r, ok := decodeReading(frame, false); ok {
			want, err := decodeEnvelope(frame)
			if err != nil || !reflect.DeepEqual(want, r) {
				t.Fatalf("one pass gives %#v, the envelope %#v, %v", r, want, err)
			}
		}
		if bytes.IndexByte(frame, '\\') < 0 {
			if r, ok := scanReading(frame, false); ok {
				want, err := decodeEnvelope(frame)
				if err != nil || !reflect.DeepEqual(want, r) {
					t.Fatalf("the scanner gives %#v, the envelope %#v, %v", r, want, err)
				}
			}
		}
	})
}

// A NOT_DYN_READING decoded in one pass is what the envelope gives; frames
// it cannot vouch for (escapes, a second Data, another Type, Data that
// does not fit) go the envelope's way, errors included.
func TestDecodeReadingInOnePassAgreesWithTheEnvelope(t *testing.T) {
	for _, tc := range []struct {
		frame   string
		onePass bool
	}{
		{`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":7,"Serial":"12345","Time":"2026-11-29 05:00:00","X":"0.01,0.02","Y":"[1,2]","Z":"AQA="}}`, true},
		{`{"Data":{"Serial":"1","X":"1"},"Type":"NOT_DYN_READING"}`, true},
		{` {"type":"NOT_DYN_READING","DATA":{"serial":"1","x":"1,2"}} `, true},
		{`{"Type":"NOT_DYN_READING","Data":null}`, true},
		{`{"Type":"NOT_DYN_READING"}`, true},
		{`{"Type":"NOT_DYN_READING","Data":{"X":"1"},"Data":{"Y":"2"}}`, false},      // the envelope keeps the last Data whole
		{`{"Type":"NOT_DYN_READING","Data":{"X":"1"},"\u0044ata":{"Y":"2"}}`, false}, // an escaped second Data
		{`{"Type":"NOT_DYN_READING","Data":{"X":"a\"b"}}`, false},
		{`{"Type":"NOT_DYN_READING_STARTED","Data":{"Serial":1,"Success":true}}`, false},
		{`{"Type":"RTN_DYN","Data":{"note":"NOT_DYN_READING"}}`, false},
		{`{"Type":"NOT_DYN_READING","Data":{"X":5}}`, false},
		{`{"Type":"NOT_DYN_READING","From":5,"Data":{"X":"1"}}`, false},
		{`{"Type":"NOT_DYN_READING","Data":"x"}`, false},
		{`{"Type":"NOT_DYN_READING","Data":{"X":"1"}`, false},
		{`{"Type":"NOT_DYN_READING","Type":"RTN_DYN","Data":{}}`, false},
	} {
		r, ok := decodeReading([]byte(tc.frame), false)
		assert.Equal(t, tc.onePass, ok, tc.frame)
		sameAsEnvelope(t, tc.frame, r, ok)
	}
}

// sameAsEnvelope checks that Decode answers frame as the envelope's way
// does, and that a shortcut that took the frame (ok) read it the same.
func sameAsEnvelope(t *testing.T, frame string, shortcut Message, ok bool) {
	t.Helper()
	want, wantErr := decodeEnvelope([]byte(frame))
	got, err := Decode([]byte(frame))
	assert.Equal(t, want, got, frame)
	assert.Equal(t, wantErr, err, frame)
	if ok {
		assert.NoError(t, wantErr, frame)
		assert.Equal(t, want, shortcut, frame)
	}
}

func ptr[T any](v T) *T { return &v }

// The frames gateways send (the simulator's shape, in each encoding) take
// the hand scanner, and it reads them as the envelope does; frames a
// little off that shape are left to encoding/json, with the same answer.
func TestScanReadingTakesThePlainShape(t *testing.T) {
	for _, tc := range []struct {
		frame   string
		scanned bool
	}{
		{`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":7,"Serial":"12345","Time":"2026-11-29 05:00:00","X":"0.01,0.02","Y":"[1,2]","Z":"AQA="}}`, true},
		{" {\n\t\"type\" : \"NOT_DYN_READING\" ,\r\"DATA\":{ \"id\":\"a7\", \"x\":\"1\" } } ", true},
		{`{"Data":{},"Type":"NOT_DYN_READING"}`, true},
		{`{"Type":"NOT_DYN_READING","Data":{"ID":-1.5e3,"Serial":"é"}}`, true},
		{`{"Type":"NOT_DYN_READING","Data":{"ID":1e400}}`, true},                        // kept as sent, as encoding/json keeps it
		{`{"Type":"NOT_DYN_READING","Data":{"ID":01}}`, false},                          // not JSON
		{`{"Type":"NOT_DYN_READING","Data":{"ID":null}}`, false},                        // left to encoding/json
		{`{"Type":"NOT_DYN_READING","Data":{"X":"1","x":"2"}}`, false},                  // a duplicate: the last wins there
		{`{"Type":"NOT_DYN_READING","Data":{"X":"1",}}`, false},                         // a trailing comma
		{`{"Type":"NOT_DYN_READING","Data":{"X":"1"}} x`, false},                        // text after the object
		{`{"Type":"NOT_DYN_READING","Data":{"X":"a` + "\x01" + `"}}`, false},            // a control character
		{`{"Type":"NOT_DYN_READING","Data":{"X":"a` + "\xff" + `"}}`, false},            // invalid UTF-8, which encoding/json replaces
		{`{"Type":"NOT_DYN_READING","CorrelationId":"1","Data":{"X":"1"}}`, false},      // another key
		{`{"Type":"NOT_DYN_READING","Data":{"X":"1"},"Type":"NOT_DYN_READING"}`, false}, // a duplicate Type
		{`{"Type":"NOT_DYN_READING ","Data":{}}`, false},                                // another Type
		{`{"Type":"NOT_DYN_READING","Data":{"Serial":7}}`, false},                       // not a string
		{`{}`, false},
	} {
		r, ok := scanReading([]byte(tc.frame), false)
		assert.Equal(t, tc.scanned, ok, tc.frame)
		sameAsEnvelope(t, tc.frame, r, ok)
	}
}

// within reports whether s's bytes lie inside b.
func within(b []byte, s string) bool {
	if len(b) == 0 || len(s) == 0 {
		return false
	}
	start, p := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= start && p+uintptr(len(s)) <= start+uintptr(len(b))
}

// A reading decoded in place shares the frame's bytes for its samples and
// copies the rest; anything else, or a reading encoding/json must read,
// comes back as from Decode.
func TestDecodeInPlace(t *testing.T) {
	frame := []byte(`{"Type":"NOT_DYN_READING","Data":{"ID":7,"Serial":"12345","Time":"t","X":"0.01,0.02","Y":"[1,2]","Z":"AQA="}}`)
	m, inPlace, err := DecodeInPlace(frame)
	require.NoError(t, err)
	require.True(t, inPlace)
	r := m.(*Reading)
	assert.Equal(t, &Reading{ID: Scalar("7"), Serial: "12345", Time: "t", X: "0.01,0.02", Y: "[1,2]", Z: "AQA="}, r)
	for _, axis := range []string{r.X, r.Y, r.Z} {
		assert.True(t, within(frame, axis), axis)
	}
	assert.False(t, within(frame, string(r.Serial)), "the serial is a copy")
	copy(frame[bytes.Index(frame, []byte("0.01")):], "9.99")
	assert.Equal(t, "9.99,0.02", r.X, "shares the frame")

	for _, f := range []string{
		`{"Type":"NOT_DYN_READING","Data":{"X":"a\"b"}}`,       // escaped: encoding/json's way
		`{"Type":"NOT_DYN_READING","Data":{"X":"1"},"More":1}`, // another key: the envelope's way
		`{"Type":"RTN_LOGIN","Data":{"Success":true}}`,
	} {
		want, wantErr := Decode([]byte(f))
		got, inPlace, err := DecodeInPlace([]byte(f))
		assert.False(t, inPlace, f)
		assert.Equal(t, wantErr, err, f)
		assert.Equal(t, want, got, f)
	}
}
