// Package wavepack is how a reading's samples are stored in
// reading_samples.data, by the format in reading_samples.format
// (migrations 004 and 006). Both formats hold exactly the float32 samples
// the API serves: packing is lossless.
//
//   - FormatRaw (0): float32 little-endian, all of X, then Y, then Z: 12
//     bytes per 3-axis sample. Rows written before migration 006.
//   - FormatXORPlanes (1): for each axis d[i] = bits(v[i]) XOR
//     bits(v[i-1]) (bits(v[-1]) = 0), split into byte planes: plane 0 is
//     the most significant byte of every d[i], plane 3 the least. Stored
//     as a 4-byte little-endian sample count n, a 4-byte little-endian
//     length m, m bytes of DEFLATE (RFC 1951, Huffman coding only) holding
//     planes 0 of X, Y and Z then planes 1 of X, Y and Z (6n bytes, one
//     block of each), and then planes 2 and 3 of X, Y and Z as they are
//     (6n bytes). Neighbouring samples of a vibration share sign and
//     exponent and often the top of the mantissa, so the high planes are
//     mostly small values that Huffman codes in a few bits; the low planes
//     are noise that no coder shrinks, so they are not given to one. A CSV
//     reading of the simulator packs to ~69 % of the raw bytes at ~0.3 ms
//     (BENCHMARKS.md, issue #14); LZ77 matching (DEFLATE's other half)
//     found little more in noisy samples at several times the cost.
package wavepack

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// The formats of reading_samples.format.
const (
	FormatRaw       int16 = 0
	FormatXORPlanes int16 = 1
)

// maxSamples bounds the count a FormatXORPlanes header may claim (a
// sensor takes at most 65,536 per axis; a gateway's frame is at most 4 MiB).
const maxSamples = 1 << 22

// ErrCorrupt wraps every failure to unpack.
var ErrCorrupt = errors.New("wavepack: corrupt samples")

// PackRaw returns the FormatRaw bytes of three axes of equal length.
func PackRaw(x, y, z []float32) []byte {
	n := len(x)
	out := make([]byte, 12*n)
	for a, axis := range [3][]float32{x, y, z} {
		base := a * 4 * n
		for i, v := range axis[:n] {
			binary.LittleEndian.PutUint32(out[base+4*i:], math.Float32bits(v))
		}
	}
	return out
}

// scratch is what one Pack or Unpack needs besides its result.
type scratch struct {
	planes []byte
	out    bytes.Buffer
	w      *flate.Writer
	r      io.ReadCloser
	br     bytes.Reader
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// size makes the planes buffer 12n bytes long.
func (s *scratch) size(n int) {
	if cap(s.planes) < 12*n {
		s.planes = make([]byte, 12*n)
	}
	s.planes = s.planes[:12*n]
}

// Pack returns the FormatXORPlanes bytes of three axes of equal length (it
// panics otherwise). The result is new and exactly as long as it needs to
// be; everything else it uses is pooled.
func Pack(x, y, z []float32) []byte {
	return AppendPack(nil, x, y, z)
}

// AppendPack appends the FormatXORPlanes bytes of three axes of equal
// length to dst and returns the extended slice, reusing dst's room when it
// has enough (a caller that pools its buffers allocates nothing); when it
// has not, the result is a new slice exactly as long as it needs to be.
func AppendPack(dst []byte, x, y, z []float32) []byte {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	return s.appendPack(dst, x, y, z)
}

// Packer packs with buffers of its own, kept from one call to the next:
// for a goroutine that packs reading after reading (a processing worker).
// The pool AppendPack uses is emptied by the collector, and the Huffman
// writer it then makes anew is ~600 KB (TestProcessorReusesItsBuffers:
// 439 KB allocated per reading, not the ~100 KB of its results). The zero
// value is ready; a Packer is not safe for concurrent use.
type Packer struct{ s scratch }

// AppendPack is the package's AppendPack on p's buffers.
func (p *Packer) AppendPack(dst []byte, x, y, z []float32) []byte {
	return p.s.appendPack(dst, x, y, z)
}

func (s *scratch) appendPack(dst []byte, x, y, z []float32) []byte {
	n := len(x)
	if len(y) != n || len(z) != n {
		panic("wavepack: axes of unequal length")
	}
	s.size(n)
	splitPlanes(s.planes, n, x, y, z)
	s.out.Reset()
	var head [8]byte
	s.out.Write(head[:]) // n and m, once m is known
	if s.w == nil {
		s.w, _ = flate.NewWriter(&s.out, flate.HuffmanOnly) // the level is valid
	} else {
		s.w.Reset(&s.out)
	}
	// Writes to a bytes.Buffer do not fail. Flush ends a block, so planes
	// 0 and planes 1 each get their own Huffman code.
	_, _ = s.w.Write(s.planes[:3*n])
	_ = s.w.Flush()
	_, _ = s.w.Write(s.planes[3*n : 6*n])
	_ = s.w.Close()
	m := s.out.Len() - len(head)
	s.out.Write(s.planes[6*n:])
	start := len(dst)
	if cap(dst)-start < s.out.Len() {
		grown := make([]byte, start, start+s.out.Len()) // exactly: it waits for the writer
		copy(grown, dst)
		dst = grown
	}
	dst = append(dst, s.out.Bytes()...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(m))
	return dst
}

// splitPlanes writes the XOR planes of the axes, plane by plane (plane 0
// of X, Y, Z, then plane 1 …), into planes (12n bytes).
func splitPlanes(planes []byte, n int, axes ...[]float32) {
	for a, axis := range axes {
		p0, p1, p2, p3 := planes[a*n:][:n], planes[(3+a)*n:][:n], planes[(6+a)*n:][:n], planes[(9+a)*n:][:n]
		var prev uint32
		for i, v := range axis[:n] {
			b := math.Float32bits(v)
			d := b ^ prev
			prev = b
			p0[i], p1[i], p2[i], p3[i] = byte(d>>24), byte(d>>16), byte(d>>8), byte(d)
		}
	}
}

// Unpack returns the samples of data stored in format.
func Unpack(format int16, data []byte) (x, y, z []float32, err error) {
	switch format {
	case FormatRaw:
		return unpackRaw(data)
	case FormatXORPlanes:
		return unpackXORPlanes(data)
	}
	return nil, nil, nil, fmt.Errorf("%w: unknown format %d", ErrCorrupt, format)
}

func unpackRaw(b []byte) (x, y, z []float32, err error) {
	if len(b)%12 != 0 {
		return nil, nil, nil, fmt.Errorf("%w: %d raw bytes, not whole 3-axis float32 samples", ErrCorrupt, len(b))
	}
	n := len(b) / 12
	all := make([]float32, 3*n)
	for i := range all {
		all[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return all[:n:n], all[n : 2*n : 2*n], all[2*n:], nil
}

func unpackXORPlanes(data []byte) (x, y, z []float32, err error) {
	if len(data) < 8 {
		return nil, nil, nil, fmt.Errorf("%w: no header", ErrCorrupt)
	}
	n, m := int(binary.LittleEndian.Uint32(data)), int(binary.LittleEndian.Uint32(data[4:]))
	if n > maxSamples || m > len(data)-8 || len(data)-8-m != 6*n {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes for %d samples (%d compressed)", ErrCorrupt, len(data), n, m)
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.size(n)
	s.br.Reset(data[8 : 8+m])
	if s.r == nil {
		s.r = flate.NewReader(&s.br)
	} else if err := s.r.(flate.Resetter).Reset(&s.br, nil); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if _, err := io.ReadFull(s.r, s.planes[:6*n]); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var one [1]byte
	if k, err := s.r.Read(one[:]); k != 0 || err != io.EOF || s.br.Len() != 0 {
		return nil, nil, nil, fmt.Errorf("%w: compressed planes longer than %d samples", ErrCorrupt, n)
	}
	copy(s.planes[6*n:], data[8+m:])
	all := make([]float32, 3*n)
	for a := range 3 {
		p0, p1, p2, p3 := s.planes[a*n:][:n], s.planes[(3+a)*n:][:n], s.planes[(6+a)*n:][:n], s.planes[(9+a)*n:][:n]
		axis := all[a*n : (a+1)*n]
		var prev uint32
		for i := range axis {
			prev ^= uint32(p0[i])<<24 | uint32(p1[i])<<16 | uint32(p2[i])<<8 | uint32(p3[i])
			axis[i] = math.Float32frombits(prev)
		}
	}
	return all[:n:n], all[n : 2*n : 2*n], all[2*n:], nil
}
