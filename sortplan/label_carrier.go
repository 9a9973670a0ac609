package sortplan

// Carrier tracking numbers: UPS 1Z, USPS IMpb, Amazon-style TBA.

// upsCheckDigit computes the check digit of a UPS 1Z number from the 15
// characters after "1Z" (shipper, service, package; check digit excluded):
// letters map to (ASCII-63) mod 10, odd positions weigh 1, even 2.
// It returns 0xFF for a character that is neither digit nor capital letter.
func upsCheckDigit(body string) byte {
	sum := 0
	for i := 0; i < len(body); i++ {
		c := body[i]
		var v int
		switch {
		case isDigit(c):
			v = int(c - '0')
		case c >= 'A' && c <= 'Z':
			v = (int(c) - 63) % 10
		default:
			return 0xFF
		}
		if i%2 == 1 {
			v *= 2
		}
		sum += v
	}
	return byte('0' + (10-sum%10)%10)
}

// UPSCheckDigit returns the check digit for the 15 characters after "1Z"
// of a UPS tracking number (for label generators and tests).
func UPSCheckDigit(body string) byte { return upsCheckDigit(body) }

// isUPS reports whether s has the shape of a UPS 1Z number (18 chars); ok
// says whether its check digit is right.
func isUPS(s string) (shape, ok bool) {
	if len(s) != 18 || s[0] != '1' || s[1] != 'Z' {
		return false, false
	}
	for i := 2; i < 18; i++ {
		c := s[i]
		if !isDigit(c) && (c < 'A' || c > 'Z') {
			return false, false
		}
	}
	if !isDigit(s[17]) {
		return true, false
	}
	return true, upsCheckDigit(s[2:17]) == s[17]
}

// impbLen reports whether n is a length of a USPS IMpb tracking number
// (service type 92..95 plus mailer id, serial and check digit).
func impbLen(n int) bool { return n == 22 || n == 26 || n == 30 || n == 34 }

// isIMpbTracking reports whether s has the shape of an IMpb tracking part
// (digits, 92..95 first, a valid length); ok says whether its mod-10 check
// digit (GS1 weights) is right.
func isIMpbTracking(s string) (shape, ok bool) {
	if !impbLen(len(s)) || s[0] != '9' || s[1] < '2' || s[1] > '5' || !allDigits(s) {
		return false, false
	}
	return true, gs1CheckOK(s)
}

// impbRouted reads a raw IMpb barcode with its routing prefix, "420" + ZIP5
// or ZIP9 + tracking. shape says the string has that form; zip is the
// destination when exactly one reading has a valid check digit.
func impbRouted(s string) (zip, tracking string, shape, ok bool) {
	if len(s) < 3+5+22 || s[0] != '4' || s[1] != '2' || s[2] != '0' || !allDigits(s) {
		return "", "", false, false
	}
	found := 0
	for _, zl := range [2]int{5, 9} {
		t := s[3+zl:]
		sh, good := isIMpbTracking(t)
		if sh {
			shape = true
		}
		if good {
			found++
			zip, tracking = s[3:3+zl], t
		}
	}
	if found != 1 { // none valid, or ambiguous between ZIP5+long and ZIP9+short
		return "", "", shape, false
	}
	return zip, tracking, true, true
}

// isTBA reports whether s is an Amazon-style TBA id: "TBA" and 12 digits.
func isTBA(s string) bool {
	return len(s) == 15 && s[0] == 'T' && s[1] == 'B' && s[2] == 'A' && allDigits(s[3:])
}
