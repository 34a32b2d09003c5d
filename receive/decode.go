package receive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/histogram"
)

// protocol is the Remote-Write message a request carries.
type protocol uint8

const (
	protoUnknown protocol = iota
	protoV1
	protoV2
)

// String returns the value of the protocol metric label.
func (p protocol) String() string {
	switch p {
	case protoV1:
		return "rw1"
	case protoV2:
		return "rw2"
	default:
		return "unknown"
	}
}

// span is a half-open range of indices into one of request's arenas.
type span struct{ lo, hi int32 }

func (s span) len() int { return int(s.hi - s.lo) }

// spanFrom returns the span from lo to the current length n of an arena.
func spanFrom(lo, n int) span { return span{lo: int32(lo), hi: int32(n)} }

// wireLabel is one label pair as it was on the wire, in the order it was sent.
type wireLabel struct{ name, value string }

// wireSample is a float sample; st is the start (created) timestamp, 0 if unknown.
type wireSample struct {
	v     float64
	t, st int64
}

// wireHistogram is a native histogram sample. Exactly one of h and fh is set;
// both are owned by whoever appends them, never reused.
type wireHistogram struct {
	h     *histogram.Histogram
	fh    *histogram.FloatHistogram
	t, st int64
	// hint is the reset hint as sent; h or fh carry it only if it is valid.
	hint int32
}

// wireExemplar is an exemplar before validation.
type wireExemplar struct {
	labels span // into request.exLabels
	refs   span // Remote-Write 2.0: into request.exRefs, resolved into labels later
	v      float64
	t      int64
}

// wireMetadata is a Remote-Write 2.0 series' metadata, as symbol references.
type wireMetadata struct {
	typ              int32
	helpRef, unitRef uint32
}

// familyMetadata is a Remote-Write 1.0 metric family's metadata.
type familyMetadata struct {
	typ                int32
	family, help, unit string
}

// wireSeries is one TimeSeries message. Its fields are spans into the arenas of
// the request it belongs to.
type wireSeries struct {
	labels     span // request.labels
	refs       span // Remote-Write 2.0 label references, into request.refs
	samples    span
	histograms span
	exemplars  span
	meta       wireMetadata
	// err is set when the series is malformed in a way that is not about its
	// labels, such as a symbol reference out of range. The series is rejected.
	err error
}

// request is a decoded write request of either protocol version, flattened into
// arenas that are reused from one request to the next.
//
// Ownership: every string in labels, exLabels, symbols and metadata aliases the
// decompressed request body. They are valid only until the body buffer goes back
// to the pool, so nothing that outlives the request may keep them: storage gets
// copies (see ownedLabels and ownedString).
type request struct {
	proto      protocol
	series     []wireSeries
	labels     []wireLabel
	exLabels   []wireLabel
	refs       []uint32
	exRefs     []uint32
	samples    []wireSample
	histograms []wireHistogram
	exemplars  []wireExemplar
	symbols    []string
	metadata   []familyMetadata
	// validUTF8 is set when every string of the request is known to be valid
	// UTF-8 (all symbols of a 2.0 request are), so labels need no check.
	validUTF8 bool

	hs histogramScratch
}

func (r *request) reset() {
	r.proto = protoUnknown
	r.validUTF8 = false
	clear(r.series) // drops errors
	r.series = r.series[:0]
	r.labels = r.labels[:0]
	r.exLabels = r.exLabels[:0]
	r.refs = r.refs[:0]
	r.exRefs = r.exRefs[:0]
	r.samples = r.samples[:0]
	clear(r.histograms) // drops histogram pointers
	r.histograms = r.histograms[:0]
	r.exemplars = r.exemplars[:0]
	r.symbols = r.symbols[:0]
	r.metadata = r.metadata[:0]
}

// forget drops every string that aliases a body buffer, so that a request kept
// in a pool does not keep a buffer alive that the pool let go.
func (r *request) forget() {
	clear(r.labels[:cap(r.labels)])
	clear(r.exLabels[:cap(r.exLabels)])
	clear(r.symbols[:cap(r.symbols)])
	clear(r.metadata[:cap(r.metadata)])
}

// decodeV1 decodes a prometheus.WriteRequest (Remote-Write 1.0) into r.
func (r *request) decodeV1(b []byte) error {
	r.reset()
	r.proto = protoV1
	p := pbuf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case 1:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("timeseries %d: %w", len(r.series), err)
			}
			if err := r.decodeV1Series(m); err != nil {
				return fmt.Errorf("timeseries %d: %w", len(r.series), err)
			}
		case 3:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("metadata %d: %w", len(r.metadata), err)
			}
			if err := r.decodeV1Metadata(m); err != nil {
				return fmt.Errorf("metadata %d: %w", len(r.metadata), err)
			}
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *request) decodeV1Series(p pbuf) error {
	labelsLo, samplesLo, histLo, exLo := len(r.labels), len(r.samples), len(r.histograms), len(r.exemplars)
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case 1:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("label: %w", err)
			}
			l, err := decodeLabel(m)
			if err != nil {
				return fmt.Errorf("label: %w", err)
			}
			r.labels = append(r.labels, l)
		case 2:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("sample: %w", err)
			}
			s, err := decodeSample(m, false)
			if err != nil {
				return fmt.Errorf("sample: %w", err)
			}
			r.samples = append(r.samples, s)
		case 3:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("exemplar: %w", err)
			}
			if err := r.decodeV1Exemplar(m); err != nil {
				return fmt.Errorf("exemplar: %w", err)
			}
		case 4:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("histogram: %w", err)
			}
			h, err := r.hs.decode(m, false)
			if err != nil {
				return fmt.Errorf("histogram: %w", err)
			}
			r.histograms = append(r.histograms, h)
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	r.series = append(r.series, wireSeries{
		labels:     spanFrom(labelsLo, len(r.labels)),
		samples:    spanFrom(samplesLo, len(r.samples)),
		histograms: spanFrom(histLo, len(r.histograms)),
		exemplars:  spanFrom(exLo, len(r.exemplars)),
	})
	return nil
}

// decodeLabel decodes a Label message. Nearly every label on the wire is field 1
// then field 2, each shorter than 128 bytes, and takes a short path.
func decodeLabel(p pbuf) (wireLabel, error) {
	if b := p.b; len(b) >= 4 && b[0] == 0x0a && b[1] < 0x80 {
		n := 2 + int(b[1])
		if n+2 <= len(b) && b[n] == 0x12 && b[n+1] < 0x80 && n+2+int(b[n+1]) == len(b) {
			return wireLabel{name: yoloString(b[2:n]), value: yoloString(b[n+2:])}, nil
		}
	}
	var l wireLabel
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return l, err
		}
		switch field {
		case 1:
			l.name, err = p.str(wire)
		case 2:
			l.value, err = p.str(wire)
		default:
			err = p.skip(wire)
		}
		if err != nil {
			return l, err
		}
	}
	return l, nil
}

// decodeSample decodes a Sample of either version; only version 2 has field 3.
// A value followed by a timestamp, and nothing else, takes a short path.
func decodeSample(p pbuf, v2 bool) (wireSample, error) {
	var s wireSample
	if b := p.b; len(b) >= 11 && b[0] == 0x09 && b[9] == 0x10 {
		q := pbuf{b: b, i: 10}
		if t, err := q.varint(); err == nil && q.done() {
			s.v = math.Float64frombits(binary.LittleEndian.Uint64(b[1:9]))
			s.t = int64(t)
			return s, nil
		}
	}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return s, err
		}
		switch {
		case field == 1:
			s.v, err = p.double(wire)
		case field == 2:
			s.t, err = p.int64(wire)
		case field == 3 && v2:
			s.st, err = p.int64(wire)
		default:
			err = p.skip(wire)
		}
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

func (r *request) decodeV1Exemplar(p pbuf) error {
	e := wireExemplar{labels: span{lo: int32(len(r.exLabels))}}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case 1:
			var m pbuf
			if m, err = p.message(wire); err == nil {
				var l wireLabel
				if l, err = decodeLabel(m); err == nil {
					r.exLabels = append(r.exLabels, l)
				}
			}
		case 2:
			e.v, err = p.double(wire)
		case 3:
			e.t, err = p.int64(wire)
		default:
			err = p.skip(wire)
		}
		if err != nil {
			return err
		}
	}
	e.labels.hi = int32(len(r.exLabels))
	r.exemplars = append(r.exemplars, e)
	return nil
}

func (r *request) decodeV1Metadata(p pbuf) error {
	var m familyMetadata
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case 1:
			m.typ, err = p.int32(wire)
		case 2:
			m.family, err = p.str(wire)
		case 4:
			m.help, err = p.str(wire)
		case 5:
			m.unit, err = p.str(wire)
		default:
			err = p.skip(wire)
		}
		if err != nil {
			return err
		}
	}
	r.metadata = append(r.metadata, m)
	return nil
}

// decodeV2 decodes an io.prometheus.write.v2.Request (Remote-Write 2.0) into r
// and resolves its symbol references. A request-level violation (a symbol table
// that does not start with "") is an error; a bad reference only marks its series.
func (r *request) decodeV2(b []byte) error {
	r.reset()
	r.proto = protoV2
	p := pbuf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case 4:
			s, err := p.str(wire)
			if err != nil {
				return fmt.Errorf("symbol %d: %w", len(r.symbols), err)
			}
			r.symbols = append(r.symbols, s)
		case 5:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("timeseries %d: %w", len(r.series), err)
			}
			if err := r.decodeV2Series(m); err != nil {
				return fmt.Errorf("timeseries %d: %w", len(r.series), err)
			}
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	if len(r.symbols) > 0 && r.symbols[0] != "" {
		return errors.New("the first symbol is not the empty string")
	}
	// Symbols are deduplicated, so checking them once is much cheaper than
	// checking every label that refers to them.
	r.validUTF8 = true
	for _, s := range r.symbols {
		if !utf8.ValidString(s) {
			r.validUTF8 = false
			break
		}
	}
	r.resolveV2()
	return nil
}

func (r *request) decodeV2Series(p pbuf) error {
	refsLo, samplesLo, histLo, exLo := len(r.refs), len(r.samples), len(r.histograms), len(r.exemplars)
	var s wireSeries
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case 1:
			r.refs, err = p.appendUint32s(wire, r.refs)
			if err != nil {
				return fmt.Errorf("labels_refs: %w", err)
			}
		case 2:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("sample: %w", err)
			}
			smp, err := decodeSample(m, true)
			if err != nil {
				return fmt.Errorf("sample: %w", err)
			}
			r.samples = append(r.samples, smp)
		case 3:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("histogram: %w", err)
			}
			h, err := r.hs.decode(m, true)
			if err != nil {
				return fmt.Errorf("histogram: %w", err)
			}
			r.histograms = append(r.histograms, h)
		case 4:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("exemplar: %w", err)
			}
			if err := r.decodeV2Exemplar(m); err != nil {
				return fmt.Errorf("exemplar: %w", err)
			}
		case 5:
			m, err := p.message(wire)
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			// A repeated embedded message is merged, as protobuf specifies.
			if err := decodeV2Metadata(m, &s.meta); err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	s.refs = spanFrom(refsLo, len(r.refs))
	s.samples = spanFrom(samplesLo, len(r.samples))
	s.histograms = spanFrom(histLo, len(r.histograms))
	s.exemplars = spanFrom(exLo, len(r.exemplars))
	r.series = append(r.series, s)
	return nil
}

func (r *request) decodeV2Exemplar(p pbuf) error {
	e := wireExemplar{refs: span{lo: int32(len(r.exRefs))}}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case 1:
			r.exRefs, err = p.appendUint32s(wire, r.exRefs)
		case 2:
			e.v, err = p.double(wire)
		case 3:
			e.t, err = p.int64(wire)
		default:
			err = p.skip(wire)
		}
		if err != nil {
			return err
		}
	}
	e.refs.hi = int32(len(r.exRefs))
	r.exemplars = append(r.exemplars, e)
	return nil
}

func decodeV2Metadata(p pbuf, m *wireMetadata) error {
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case 1:
			m.typ, err = p.int32(wire)
		case 3:
			m.helpRef, err = p.uint32(wire)
		case 4:
			m.unitRef, err = p.uint32(wire)
		default:
			err = p.skip(wire)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// resolveV2 turns the symbol references of every series into label pairs.
// A series with a reference out of range, or an odd number of label references,
// gets err set and is rejected when written.
func (r *request) resolveV2() {
	for i := range r.series {
		s := &r.series[i]
		lo := len(r.labels)
		var err error
		r.labels, err = r.resolveLabels(r.labels, r.refs, s.refs, "label")
		s.labels = spanFrom(lo, len(r.labels))
		if err == nil {
			err = r.checkRef(s.meta.helpRef, "help")
		}
		if err == nil {
			err = r.checkRef(s.meta.unitRef, "unit")
		}
		for j := s.exemplars.lo; j < s.exemplars.hi && err == nil; j++ {
			e := &r.exemplars[j]
			lo := len(r.exLabels)
			r.exLabels, err = r.resolveLabels(r.exLabels, r.exRefs, e.refs, "exemplar label")
			e.labels = spanFrom(lo, len(r.exLabels))
		}
		s.err = err
	}
}

func (r *request) resolveLabels(dst []wireLabel, arena []uint32, refs span, what string) ([]wireLabel, error) {
	if refs.len()%2 != 0 {
		return dst, fmt.Errorf("%w: odd number (%d) of %s references", errBadSymbolRef, refs.len(), what)
	}
	for j := refs.lo; j < refs.hi; j += 2 {
		n, v := arena[j], arena[j+1]
		if uint64(n) >= uint64(len(r.symbols)) {
			return dst, r.checkRef(n, what+" name")
		}
		if uint64(v) >= uint64(len(r.symbols)) {
			return dst, r.checkRef(v, what+" value")
		}
		dst = append(dst, wireLabel{name: r.symbols[n], value: r.symbols[v]})
	}
	return dst, nil
}

func (r *request) checkRef(ref uint32, what string) error {
	if uint64(ref) >= uint64(len(r.symbols)) {
		return fmt.Errorf("%w: %s reference %d out of range (%d symbols)", errBadSymbolRef, what, ref, len(r.symbols))
	}
	return nil
}

// histogramScratch collects the fields of one Histogram message. The message's
// fields may come in any order, so the owned histogram is built only once the
// message is complete.
type histogramScratch struct {
	countKind, zeroKind   uint8 // 0: absent, 1: integer, 2: float
	countInt, zeroInt     uint64
	countFloat, zeroFloat float64
	sum, zeroThreshold    float64
	schema, hint          int32
	t, st                 int64
	negSpans, posSpans    []histogram.Span
	negDeltas, posDeltas  []int64
	negCounts, posCounts  []float64
	custom                []float64
}

const (
	kindAbsent = iota
	kindInt
	kindFloat
)

func (hs *histogramScratch) reset() {
	*hs = histogramScratch{
		negSpans: hs.negSpans[:0], posSpans: hs.posSpans[:0],
		negDeltas: hs.negDeltas[:0], posDeltas: hs.posDeltas[:0],
		negCounts: hs.negCounts[:0], posCounts: hs.posCounts[:0],
		custom: hs.custom[:0],
	}
}

// decode decodes a Histogram message of either version (only version 2 has a
// start timestamp) into an owned histogram. A histogram is a float histogram if
// its count is a float, as in the Prometheus codecs.
func (hs *histogramScratch) decode(p pbuf, v2 bool) (wireHistogram, error) {
	hs.reset()
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return wireHistogram{}, err
		}
		switch {
		case field == 1:
			hs.countInt, err = p.uvarint(wire)
			hs.countKind = kindInt
		case field == 2:
			hs.countFloat, err = p.double(wire)
			hs.countKind = kindFloat
		case field == 3:
			hs.sum, err = p.double(wire)
		case field == 4:
			hs.schema, err = p.sint32(wire)
		case field == 5:
			hs.zeroThreshold, err = p.double(wire)
		case field == 6:
			hs.zeroInt, err = p.uvarint(wire)
			hs.zeroKind = kindInt
		case field == 7:
			hs.zeroFloat, err = p.double(wire)
			hs.zeroKind = kindFloat
		case field == 8:
			hs.negSpans, err = appendSpan(&p, wire, hs.negSpans)
		case field == 9:
			hs.negDeltas, err = p.appendSint64s(wire, hs.negDeltas)
		case field == 10:
			hs.negCounts, err = p.repeatedDoubles(wire, hs.negCounts)
		case field == 11:
			hs.posSpans, err = appendSpan(&p, wire, hs.posSpans)
		case field == 12:
			hs.posDeltas, err = p.appendSint64s(wire, hs.posDeltas)
		case field == 13:
			hs.posCounts, err = p.repeatedDoubles(wire, hs.posCounts)
		case field == 14:
			hs.hint, err = p.int32(wire)
		case field == 15:
			hs.t, err = p.int64(wire)
		case field == 16:
			hs.custom, err = p.repeatedDoubles(wire, hs.custom)
		case field == 17 && v2:
			hs.st, err = p.int64(wire)
		default:
			err = p.skip(wire)
		}
		if err != nil {
			return wireHistogram{}, err
		}
	}
	return hs.build(), nil
}

func appendSpan(p *pbuf, wire int, dst []histogram.Span) ([]histogram.Span, error) {
	m, err := p.message(wire)
	if err != nil {
		return dst, err
	}
	var s histogram.Span
	for !m.done() {
		field, wire, err := m.tag()
		if err != nil {
			return dst, err
		}
		switch field {
		case 1:
			s.Offset, err = m.sint32(wire)
		case 2:
			s.Length, err = m.uint32(wire)
		default:
			err = m.skip(wire)
		}
		if err != nil {
			return dst, err
		}
	}
	return append(dst, s), nil
}

// clone returns a copy of s, or nil if s is empty.
func clone[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func (hs *histogramScratch) build() wireHistogram {
	w := wireHistogram{t: hs.t, st: hs.st, hint: hs.hint}
	var hint histogram.CounterResetHint
	if validResetHint(hs.hint) {
		hint = histogram.CounterResetHint(hs.hint)
	}
	if hs.countKind == kindFloat {
		fh := &histogram.FloatHistogram{
			CounterResetHint: hint,
			Schema:           hs.schema,
			ZeroThreshold:    hs.zeroThreshold,
			Count:            hs.countFloat,
			Sum:              hs.sum,
			PositiveSpans:    clone(hs.posSpans),
			PositiveBuckets:  clone(hs.posCounts),
			NegativeSpans:    clone(hs.negSpans),
			NegativeBuckets:  clone(hs.negCounts),
			CustomValues:     clone(hs.custom),
		}
		if hs.zeroKind == kindFloat {
			fh.ZeroCount = hs.zeroFloat
		}
		w.fh = fh
		return w
	}
	h := &histogram.Histogram{
		CounterResetHint: hint,
		Schema:           hs.schema,
		ZeroThreshold:    hs.zeroThreshold,
		Count:            hs.countInt,
		Sum:              hs.sum,
		PositiveSpans:    clone(hs.posSpans),
		PositiveBuckets:  clone(hs.posDeltas),
		NegativeSpans:    clone(hs.negSpans),
		NegativeBuckets:  clone(hs.negDeltas),
		CustomValues:     clone(hs.custom),
	}
	if hs.zeroKind == kindInt {
		h.ZeroCount = hs.zeroInt
	}
	w.h = h
	return w
}

func validResetHint(h int32) bool {
	return h >= int32(histogram.UnknownCounterReset) && h <= int32(histogram.GaugeType)
}
