package ctc

import (
	"fmt"
	"testing"
	"time"
)

var (
	loginAnswer = []byte(`{"Type":"RTN_LOGIN","From":"SERV","Target":"UI","Data":{"Email":"ops@example.com","First":"Ann","Last":"Lee","Success":true,"AccessLevel":2,"Verified":true}}`)
	readingNote = []byte(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":7,"Serial":"12345","Time":"2026-11-29 05:00:00","X":"0.012,0.015,-0.011","Y":"0.021,0.019,-0.020","Z":"0.101,0.099,0.102"}}`)
)

func BenchmarkEncodeLogin(b *testing.B) {
	for b.Loop() {
		if _, err := Encode(TypePostLogin, Login{Email: "ops@example.com", Password: "s3cret"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeLoginAnswer(b *testing.B) {
	for b.Loop() {
		if _, err := Decode(loginAnswer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReading(b *testing.B) {
	for b.Loop() {
		if _, err := Decode(readingNote); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMalformed(b *testing.B) {
	frame := []byte(`{"Type":"RTN_LOGIN","Data":{"Success":"yes"}}`)
	for b.Loop() {
		_, _ = Decode(frame)
	}
}

// BenchmarkMatcher: one request in, one answer out, with a deadline check.
func BenchmarkMatcher(b *testing.B) {
	var m Matcher[int]
	now := time.Now()
	for i := 0; b.Loop(); i++ {
		m.Add(i, now, time.Second)
		m.Expire(now)
		if _, ok, late := m.Take(); !ok || late {
			b.Fatal("no answer")
		}
	}
}

// sensorList is a GET_DYN_CONNECTED answer of n sensors keyed by serial,
// as the simulator writes them.
func sensorList(n int) []byte {
	b := []byte{'{'}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"%d":{"Serial":%d,"Connected":1,"PartNum":"PN-%d","ReadRate":25600,"Samples":8192,"Name":"Sensor %d"}`,
			100000+i, 100000+i, i, i)
	}
	return append(b, '}')
}

// BenchmarkSensors: a gateway's list of 2, 100 and 4,096 sensors, and one
// of 40,000 of which the lowest 4,096 are kept.
func BenchmarkSensors(b *testing.B) {
	for _, n := range []int{2, 100, 4096, 40_000} {
		list := sensorList(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(list)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Sensors(list); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
