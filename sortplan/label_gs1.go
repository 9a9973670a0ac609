package sortplan

// GS1 element strings, read strictly and without allocating: the parser
// walks the input by index and hands back substrings of it.

const gs = 0x1D // ASCII GS, how scanners transmit FNC1 as a field separator

// Character sets of GS1 AI values.
const (
	csN  uint8 = 1 << iota // digits
	cs82                   // GS1 AI encodable character set 82
	cs39                   // GS1 AI encodable character set 39
	cs64                   // GS1 AI encodable character set 64 (base64url, "=" padding checked by lint64)
)

// csetOf classifies every byte; a value byte b is allowed for an AI with
// charset c when csetOf[b]&c != 0.
var csetOf = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = csN | cs82 | cs39
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cs82 | cs39
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cs82
	}
	for _, c := range "!\"%&'()*+,-./:;<=>?_" {
		t[c] |= cs82
	}
	t['#'] |= cs39
	t['-'] |= cs39
	t['/'] |= cs39
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=" {
		t[c] |= cs64
	}
	return t
}()

// aiSpec describes one application identifier.
type aiSpec struct {
	valid     bool
	fixed     bool  // predefined length ("*" in the dictionary): never followed by a separator
	min, max  uint8 // value length
	cs        uint8 // charset of the value after numPrefix
	numPrefix uint8 // leading value chars that must be digits (421: country)
	check     uint8 // if > 0: the first check digits carry a GS1 mod-10 check digit in the last of them
	lint      aiLint
	role      aiRole
}

// aiRole marks the AIs whose values the resolver keeps, so that recording
// a value is a switch on a byte instead of on the AI's digits.
type aiRole uint8

const (
	roleNone aiRole = iota
	role420         // ship-to postal code
	role421         // country + postal code
	role403         // routing code
	role00          // SSCC
	roleIMpb        // 92..95: a USPS IMpb tracking number
	nRoles
)

// aiTab holds every AI the parser knows, indexed by its digits; aiLen maps
// the first two digits to the AI's length (GS1 AIs are prefix-free).
type aiTab struct {
	aiLen [100]uint8
	s2    [100]aiSpec
	s3    [1000]aiSpec
	s4    [10000]aiSpec
}

var gs1AIs = buildAITable()

func buildAITable() *aiTab {
	t := &aiTab{}
	for i := range gs1AIRows {
		r := &gs1AIRows[i]
		lo, hi, digits := r.span()
		s := aiSpec{valid: true, fixed: r.fixed, min: r.min, max: r.max, cs: r.cs, numPrefix: r.numPrefix,
			check: r.check, lint: r.lint}
		if s.cs == 0 || s.min == 0 || s.max < s.min || s.numPrefix > s.max || s.check > s.max ||
			lo > hi || digits < 2 || digits > 4 || (s.fixed && s.min != s.max) {
			panic("gs1 ai table: malformed row " + r.ais) // a build defect, caught by every test
		}
		for ai := lo; ai <= hi; ai++ {
			p := ai
			for d := digits; d > 2; d-- {
				p /= 10
			}
			if t.aiLen[p] != 0 && int(t.aiLen[p]) != digits {
				panic("gs1 ai table: inconsistent AI length at " + r.ais)
			}
			t.aiLen[p] = uint8(digits)
			var slot *aiSpec
			switch digits {
			case 2:
				slot = &t.s2[ai]
			case 3:
				slot = &t.s3[ai]
			default:
				slot = &t.s4[ai]
			}
			if slot.valid {
				panic("gs1 ai table: AI listed twice at " + r.ais)
			}
			*slot = s
		}
	}
	for ai, role := range map[int]aiRole{420: role420, 421: role421, 403: role403} {
		t.s3[ai].role = role
	}
	t.s2[0].role = role00
	for ai := 92; ai <= 95; ai++ {
		t.s2[ai].role = roleIMpb
	}
	return t
}

// gs1Fail says why a GS1 string was rejected; the zero value is success.
type gs1Fail uint8

const (
	gs1OK gs1Fail = iota
	gs1Empty
	gs1UnknownAI
	gs1Truncated
	gs1TooShort
	gs1TooLong
	gs1BadChar
	gs1BadCheck
	gs1BadDate
	gs1EmptyField
	gs1Repeated
	gs1BadHRI
	gs1BadPostal
	gs1BadIMpb
	gs1BadValue
)

func (f gs1Fail) String() string {
	switch f {
	case gs1OK:
		return "ok"
	case gs1Empty:
		return "no element string"
	case gs1UnknownAI:
		return "unknown application identifier"
	case gs1Truncated:
		return "fixed-length field cut short"
	case gs1TooShort:
		return "value too short"
	case gs1TooLong:
		return "value too long (missing separator?)"
	case gs1BadChar:
		return "character not allowed for this AI"
	case gs1BadCheck:
		return "bad check digit"
	case gs1BadDate:
		return "bad date or time"
	case gs1EmptyField:
		return "empty field (two separators)"
	case gs1Repeated:
		return "AI repeated with another value"
	case gs1BadHRI:
		return "malformed human-readable form"
	case gs1BadPostal:
		return "not a US postal code (ZIP5, ZIP+4 or ZIP+4+2: 5, 9 or 11 digits)"
	case gs1BadIMpb:
		return "bad IMpb tracking number"
	case gs1BadValue:
		return "value outside the AI's format"
	}
	return "gs1 failure"
}

// span is a substring of the input as a value: the start offset in the low
// 56 bits, the length in the high 8 (every span the parser keeps is an AI
// or an AI value with its AI, at most 94 bytes). Eight bytes instead of a
// 16-byte string header keep gs1Result within one cache line.
type span uint64

func mkSpan(start, end int) span { return span(uint64(start) | uint64(end-start)<<56) }

// in returns the span's text in s ("" for the zero span).
func (p span) in(s string) string {
	start := int(p & (1<<56 - 1))
	return s[start : start+int(p>>56)]
}

// gs1Result holds the fields the resolver cares about, as spans of the
// input, indexed by role: kept[role420] is the AI 420 value, ...,
// kept[roleIMpb] an AI 92..95 value with its AI (a USPS IMpb tracking
// number); kept[roleNone] is scratch. A zero span is an absent field (no
// kept value is empty). fail/failPos/failAI describe the first error.
type gs1Result struct {
	fail    gs1Fail
	failPos int
	failAI  span
	kept    [nRoles]span
}

// noAI is what aiAt returns for an unknown AI.
var noAI aiSpec

// aiAt reads an AI at the start of s: its spec (noAI, not valid, when
// unknown) and its length. It returns a pointer into the table, so no spec
// is copied.
func aiAt(s string) (*aiSpec, int) {
	if len(s) < 2 {
		return &noAI, 0
	}
	d0, d1 := s[0]-'0', s[1]-'0'
	if d0 > 9 || d1 > 9 {
		return &noAI, 0
	}
	p := int(d0)*10 + int(d1)
	l := int(gs1AIs.aiLen[p])
	if l == 0 || len(s) < l {
		return &noAI, 0
	}
	switch l {
	case 2:
		return &gs1AIs.s2[p], 2
	case 3:
		d2 := s[2] - '0'
		if d2 > 9 {
			return &noAI, 0
		}
		return &gs1AIs.s3[p*10+int(d2)], 3
	default:
		d2, d3 := s[2]-'0', s[3]-'0'
		if d2 > 9 || d3 > 9 {
			return &noAI, 0
		}
		return &gs1AIs.s4[p*100+int(d2)*10+int(d3)], 4
	}
}

// lookupAI reads an AI at the start of s.
func lookupAI(s string) (aiSpec, int) {
	sp, n := aiAt(s)
	return *sp, n
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return len(s) > 0
}

// gs1CheckOK verifies the GS1 mod-10 check digit in the last of digits.
func gs1CheckOK(digits string) bool {
	n := len(digits)
	if n < 2 {
		return false
	}
	return gs1CheckDigit(digits[:n-1]) == digits[n-1]
}

// gs1CheckDigit computes the GS1 mod-10 check digit of a digit string:
// weights 3,1,3,... from the right. Non-digits give 0xFF.
func gs1CheckDigit(body string) byte {
	sum := 0
	w := 3
	for i := len(body) - 1; i >= 0; i-- {
		c := body[i]
		if !isDigit(c) {
			return 0xFF
		}
		sum += int(c-'0') * w
		w = 4 - w
	}
	return byte('0' + (10-sum%10)%10)
}

// GS1CheckDigit returns the GS1 mod-10 check digit for body (digits only),
// e.g. for building SSCCs and GTINs in tests and label generators.
func GS1CheckDigit(body string) byte { return gs1CheckDigit(body) }

// checkValue validates one AI value against its spec: length, character
// set (digits for the numPrefix first characters), check digit, date.
func checkValue(sp *aiSpec, v string) (gs1Fail, int) {
	n := len(v)
	if n == 0 {
		return gs1EmptyField, 0
	}
	if n < int(sp.min) {
		return gs1TooShort, n
	}
	if n > int(sp.max) {
		return gs1TooLong, int(sp.max)
	}
	k := 0
	for np := min(int(sp.numPrefix), n); k < np; k++ {
		if !isDigit(v[k]) {
			return gs1BadChar, k
		}
	}
	for cs := sp.cs; k < n; k++ {
		if csetOf[v[k]]&cs == 0 {
			return gs1BadChar, k
		}
	}
	return checkDigitsDate(sp, v)
}

// checkDigitsDate is the last part of checkValue: check digit, then the
// AI's content rule (dates, times, flags; see aiLint).
func checkDigitsDate(sp *aiSpec, v string) (gs1Fail, int) {
	if sp.lint == lintZero && v[0] != '0' { // GRAI: the zero comes before the checked digits
		return gs1BadValue, 0
	}
	if sp.check > 0 && !gs1CheckOK(v[:sp.check]) {
		return gs1BadCheck, int(sp.check) - 1
	}
	if sp.lint != lintNone {
		return lintValue(sp.lint, v)
	}
	return gs1OK, 0
}

// keep records the value of an AI the resolver uses; an AI repeated with
// a different value is a syntax error (the GS1 rule for repeated AIs).
func (r *gs1Result) keep(role aiRole, v span, s string) bool {
	slot := &r.kept[role]
	if *slot != 0 && slot.in(s) != v.in(s) {
		return false
	}
	*slot = v
	return true
}

// parseGS1 reads into r (zero on entry) an element string whose symbology identifier (if any) was
// removed: AIs in a row, variable-length values ended by GS or the end.
// The value checks of checkValue are written out here, so that the common
// field costs no call: same order, same verdicts.
func parseGS1(s string, r *gs1Result) {
	i := 0
	if i < len(s) && s[i] == gs { // FNC1 in first position, as some scanners send it
		i++
	}
	if i >= len(s) {
		r.fail, r.failPos = gs1Empty, i
		return
	}
	for i < len(s) {
		if s[i] == gs {
			r.fail, r.failPos = gs1EmptyField, i
			return
		}
		// aiAt, written out (no call in the per-field loop).
		sp, al := &noAI, 0
		if i+2 <= len(s) {
			d0, d1 := s[i]-'0', s[i+1]-'0'
			if d0 <= 9 && d1 <= 9 {
				p := int(d0)*10 + int(d1)
				switch l := int(gs1AIs.aiLen[p]); {
				case l == 2:
					sp, al = &gs1AIs.s2[p], 2
				case l == 0 || i+l > len(s):
				case l == 3:
					if d2 := s[i+2] - '0'; d2 <= 9 {
						sp, al = &gs1AIs.s3[p*10+int(d2)], 3
					}
				default:
					if d2, d3 := s[i+2]-'0', s[i+3]-'0'; d2 <= 9 && d3 <= 9 {
						sp, al = &gs1AIs.s4[p*100+int(d2)*10+int(d3)], 4
					}
				}
			}
		}
		if !sp.valid {
			r.fail, r.failPos = gs1UnknownAI, i
			return
		}
		vs := i + al
		// One pass over the value finds its end and its first character
		// outside the AI's set (digits only for the first numPrefix). GS is
		// in no set, so the scan for the separator costs nothing extra.
		np, cs := vs+int(sp.numPrefix), sp.cs
		bad := -1
		var ve, next int
		if sp.fixed {
			ve = vs + int(sp.max)
			if ve > len(s) {
				r.fail, r.failPos, r.failAI = gs1Truncated, len(s), mkSpan(i, vs)
				return
			}
			for k := vs; k < ve; k++ {
				m := cs
				if k < np {
					m = csN
				}
				if csetOf[s[k]]&m == 0 {
					bad = k
					break
				}
			}
			next = ve
			if next < len(s) && s[next] == gs { // tolerated: a separator after a predefined-length field
				next++
			}
		} else {
			ve = len(s)
			for k := vs; k < len(s); k++ {
				m := cs
				if k < np {
					m = csN
				}
				if c := s[k]; csetOf[c]&m == 0 {
					if c == gs {
						ve = k
						break
					}
					if bad < 0 {
						bad = k
					}
				}
			}
			next = ve
			if ve < len(s) {
				next = ve + 1
			}
		}
		// checkValue's verdicts, in its order.
		f, off := gs1OK, 0
		switch n := ve - vs; {
		case n == 0:
			f = gs1EmptyField
		case n < int(sp.min):
			f, off = gs1TooShort, n
		case n > int(sp.max):
			f, off = gs1TooLong, int(sp.max)
		case bad >= 0:
			f, off = gs1BadChar, bad-vs
		case sp.check > 0 || sp.lint != lintNone:
			f, off = checkDigitsDate(sp, s[vs:ve])
		}
		if f != gs1OK {
			r.fail, r.failPos, r.failAI = f, vs+off, mkSpan(i, vs)
			return
		}
		if sp.role != roleNone {
			start := vs
			if sp.role == roleIMpb {
				start = i // the tracking number includes its AI
			}
			if !r.keep(sp.role, mkSpan(start, ve), s) {
				r.fail, r.failPos, r.failAI = gs1Repeated, i, mkSpan(i, vs)
				return
			}
		}
		i = next
	}
}

// parseGS1HRI reads the human-readable form "(420)90210(00)…".
func parseGS1HRI(s string, r *gs1Result) {
	i := 0
	if len(s) == 0 {
		r.fail = gs1Empty
		return
	}
	for i < len(s) {
		if s[i] != '(' {
			r.fail, r.failPos = gs1BadHRI, i
			return
		}
		close := -1
		for k := i + 1; k < len(s) && k <= i+5; k++ {
			if s[k] == ')' {
				close = k
				break
			}
		}
		if close < 0 {
			r.fail, r.failPos = gs1BadHRI, i
			return
		}
		ai := s[i+1 : close]
		sp, al := aiAt(ai)
		if !sp.valid || al != len(ai) {
			r.fail, r.failPos = gs1UnknownAI, i+1
			return
		}
		aiSp := mkSpan(i+1, close)
		vs := close + 1
		ve := len(s)
		for k := vs; k < len(s); k++ {
			if s[k] == '(' {
				ve = k
				break
			}
		}
		v := s[vs:ve]
		if sp.fixed && len(v) != int(sp.max) {
			f := gs1TooShort
			if len(v) > int(sp.max) {
				f = gs1TooLong
			}
			r.fail, r.failPos, r.failAI = f, vs, aiSp
			return
		}
		if f, off := checkValue(sp, v); f != gs1OK {
			r.fail, r.failPos, r.failAI = f, vs+off, aiSp
			return
		}
		// The HRI form has no contiguous "9x…" substring: IMpb is read from
		// the barcode, so an AI 92..95 here is checked and not kept.
		if sp.role != roleNone && sp.role != roleIMpb && !r.keep(sp.role, mkSpan(vs, ve), s) {
			r.fail, r.failPos, r.failAI = gs1Repeated, i, aiSp
			return
		}
		i = ve
	}
}
