package sortplan

// Content rules of GS1 AI values beyond length, character set and the
// mod-10 check digit: the Syntax Dictionary's linters that this reader
// applies (named after them in the comments). They run only for the AIs
// that carry one, after the length and character checks, so every value
// reaching them has the right length and only allowed characters.

// aiLint names the content rule of an AI.
type aiLint uint8

const (
	lintNone         aiLint = iota
	lintYYMMD0              // yymmd0: date, day 00 allowed (end of month)
	lintYYMMDD              // yymmdd
	lintYYMMD0HHMI          // yymmd0 + hhmi
	lintYYMMDDHHMI          // yymmdd + hhmi
	lintHarvest             // yymmdd [yymmdd]: 6 or 12 digits
	lintTestBy              // yymmdd [hhmi]: 6 or 10 digits
	lintProdTime            // yymmdd hh [mi] [ss]: 8, 10 or 12 digits
	lintYYYYMMDD            // yyyymmdd
	lintYYYYMMDDHHMI        // yyyymmdd + hhmi
	lintYesNo               // yesno: 0 or 1
	lintHyphen              // N6 [X1],hyphen: an optional seventh char is "-"
	lintTriples             // N3 [N3]...: whole 3-digit country codes
	lintZero                // zero: GRAI's first digit is 0
	lintCsumAlpha           // csumalpha: GMN check character pair
	lintMUDI                // csumalpha + hasnondigit
	lint64                  // cset64 padding: at most two "=", only at the end of a length divisible by 3
)

// lintValue applies rule l to v; the int is the offset of the fault.
func lintValue(l aiLint, v string) (gs1Fail, int) {
	n := len(v)
	switch l {
	case lintYYMMD0:
		return dateAt(v, 0, 2, true)
	case lintYYMMDD:
		return dateAt(v, 0, 2, false)
	case lintYYMMD0HHMI:
		if f, o := dateAt(v, 0, 2, true); f != gs1OK {
			return f, o
		}
		return hhmiAt(v, 6)
	case lintYYMMDDHHMI:
		if f, o := dateAt(v, 0, 2, false); f != gs1OK {
			return f, o
		}
		return hhmiAt(v, 6)
	case lintHarvest:
		if n != 6 && n != 12 {
			return gs1BadValue, 6
		}
		if f, o := dateAt(v, 0, 2, false); f != gs1OK || n == 6 {
			return f, o
		}
		return dateAt(v, 6, 2, false)
	case lintTestBy:
		if n != 6 && n != 10 {
			return gs1BadValue, 6
		}
		if f, o := dateAt(v, 0, 2, false); f != gs1OK || n == 6 {
			return f, o
		}
		return hhmiAt(v, 6)
	case lintProdTime:
		if n != 8 && n != 10 && n != 12 {
			return gs1BadValue, 8
		}
		if f, o := dateAt(v, 0, 2, false); f != gs1OK {
			return f, o
		}
		for k, lim := 6, 24; k < n; k, lim = k+2, 60 {
			if two(v, k) >= lim {
				return gs1BadDate, k
			}
		}
	case lintYYYYMMDD:
		return dateAt(v, 0, 4, false)
	case lintYYYYMMDDHHMI:
		if f, o := dateAt(v, 0, 4, false); f != gs1OK {
			return f, o
		}
		return hhmiAt(v, 8)
	case lintYesNo:
		if v[0] != '0' && v[0] != '1' {
			return gs1BadValue, 0
		}
	case lintHyphen:
		if n == 7 && v[6] != '-' {
			return gs1BadValue, 6
		}
	case lintTriples:
		if n%3 != 0 {
			return gs1BadValue, n - n%3
		}
	case lintZero:
		if v[0] != '0' {
			return gs1BadValue, 0
		}
	case lintCsumAlpha, lintMUDI:
		if !csumAlphaOK(v) {
			return gs1BadCheck, n - 2
		}
		if l == lintMUDI && allDigits(v) {
			return gs1BadValue, 0
		}
	case lint64:
		pads := 0
		for pads < n && v[n-1-pads] == '=' {
			pads++
		}
		if pads > 2 || pads > 0 && n%3 != 0 {
			return gs1BadValue, n - pads
		}
		for k := 0; k < n-pads; k++ {
			if v[k] == '=' {
				return gs1BadChar, k
			}
		}
	}
	return gs1OK, 0
}

// two reads the two digits at v[k:k+2].
func two(v string, k int) int { return int(v[k]-'0')*10 + int(v[k+1]-'0') }

// dateAt checks a date at v[k:]: a year of yl digits (2 or 4), month
// 01..12, a day that exists in that month (00 allowed with day0: "end of
// the month"). A two-digit year's century does not matter for leap years
// between 2000 and 2099, the years GS1's 50-year window gives today.
func dateAt(v string, k, yl int, day0 bool) (gs1Fail, int) {
	y := two(v, k)
	if yl == 4 {
		y = y*100 + two(v, k+2)
	}
	m, d := two(v, k+yl), two(v, k+yl+2)
	if m < 1 || m > 12 {
		return gs1BadDate, k + yl
	}
	if d == 0 && day0 {
		return gs1OK, 0
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && y%4 == 0 && (yl == 2 || y%100 != 0 || y%400 == 0) {
		days = 29
	}
	if d < 1 || d > days {
		return gs1BadDate, k + yl + 2
	}
	return gs1OK, 0
}

// hhmiAt checks a time of day hhmi at v[k:].
func hhmiAt(v string, k int) (gs1Fail, int) {
	if two(v, k) > 23 {
		return gs1BadDate, k
	}
	if two(v, k+2) > 59 {
		return gs1BadDate, k + 2
	}
	return gs1OK, 0
}

// cset82Rank is each CSET 82 character's position in the set as GS1
// orders it (General Specifications, figure 7.11-1): "!" is 0, "z" 81;
// -1 for anything else.
var cset82Rank = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz" {
		t[c] = int8(i)
	}
	return t
}()

// cset32 are the check characters of the alphanumeric check pair.
const cset32 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// csumAlphaOK verifies the check character pair that ends v (GMN, MUDI):
// the CSET 82 ranks of the data weighted by the primes 2, 3, 5, ... from
// the right, modulo 1021, written as two CSET 32 characters of 5 bits.
func csumAlphaOK(v string) bool {
	n := len(v)
	if n < 2 || n-2 > len(csumPrimes) {
		return false
	}
	sum := 0
	for i := 0; i < n-2; i++ {
		r := cset82Rank[v[i]]
		if r < 0 {
			return false
		}
		sum += int(r) * csumPrimes[n-3-i]
	}
	sum %= 1021
	return v[n-2] == cset32[sum>>5] && v[n-1] == cset32[sum&31]
}

// csumPrimes are the weights of csumAlphaOK, enough for a 90-char value.
var csumPrimes = func() (p []int) {
	for c := 2; len(p) < 90; c++ {
		prime := true
		for _, q := range p {
			if q*q > c {
				break
			}
			if c%q == 0 {
				prime = false
				break
			}
		}
		if prime {
			p = append(p, c)
		}
	}
	return p
}()
