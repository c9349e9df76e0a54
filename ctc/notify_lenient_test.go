package ctc_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
)

// README ("Lenient fields"): gateways' numbers may come as strings and
// booleans as 0/1. RTN_LOGIN's Success and NOT_DYN_TEMP's Serial are read
// that way; the reading notifications were not, so a refusal sent as
// "Success":0 was dropped as malformed (the reading waits out
// READING_START_TIMEOUT instead of failing as refused), and a reading
// whose Serial is a number lost its samples (found by an audit, helper
// 6, whose test this is).
func TestReadingNotificationsAreLenient(t *testing.T) {
	started := map[string]ctc.ReadingStarted{
		`{"Type":"NOT_DYN_READING_STARTED","Data":{"Serial":101,"Success":0}}`:                {Serial: "101", Success: false},
		`{"Type":"NOT_DYN_READING_STARTED","Data":{"Serial":101,"Success":"false"}}`:          {Serial: "101", Success: false},
		`{"Type":"NOT_DYN_READING_STARTED","Data":{"Serial":101,"Success":1}}`:                {Serial: "101", Success: true},
		`{"Type":"NOT_DYN_READING_STARTED","Data":{"Serial":"101","Success":true}}`:           {Serial: "101", Success: true},
		`{"Type":"NOT_DYN_READING_STARTED","Data":{"Serial":101,"Success":false,"Error":42}}`: {Serial: "101", Error: "42"},
	}
	for frame, want := range started {
		m, err := ctc.Decode([]byte(frame))
		if assert.NoError(t, err, frame) {
			assert.Equal(t, &want, m, frame)
		}
	}
	m, err := ctc.Decode([]byte(`{"Type":"NOT_DYN_READING","Data":{"ID":1,"Serial":101,"Time":"t","X":"1,2","Y":"1,2","Z":"1,2"}}`))
	require.NoError(t, err)
	r, ok := m.(*ctc.Reading)
	require.True(t, ok)
	assert.Equal(t, ctc.Text("101"), r.Serial)
	n, ok := r.Serial.Int64()
	assert.True(t, ok)
	assert.Equal(t, int64(101), n)
}

// What is no boolean still drops the frame: an error code in Success is no
// success.
func TestReadingStartedWithAnOddSuccessIsDropped(t *testing.T) {
	for _, frame := range []string{
		`{"Type":"NOT_DYN_READING_STARTED","Data":{"Serial":101,"Success":2}}`,
		`{"Type":"NOT_DYN_READING_STARTED","Data":{"Serial":101,"Success":"yes"}}`,
	} {
		_, err := ctc.Decode([]byte(frame))
		assert.ErrorIs(t, err, ctc.ErrMalformed, frame)
	}
}
