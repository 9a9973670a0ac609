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

// Every carrier id follows one rule: a code that claims a carrier (by its
// prefix and alphabet) must match that carrier's format exactly, or it is
// refused with a reason; it is never looked up in the manifest as a plain
// package id. The claims:
//
//	UPS   "1Z" and capitals/digits  -> 18 chars, check digit (upsCheckDigit)
//	TBA   "TBA" and digits          -> TBA + 12 digits (no check digit exists)
//	IMpb  digits, 92..95 first, 22/26/30/34 long -> GS1 mod-10 check digit
//	IMpb  "420" + ZIP5/ZIP9/ZIP11 + an IMpb as above
//	SSCC  GS1 AI 00 -> 18 digits, GS1 mod-10 (the AI table)

// isUPS reports whether s claims to be a UPS 1Z number ("1Z" followed by
// capitals and digits only); ok says whether it is one: 18 characters and
// the right check digit. badLen is true when it failed on its length.
func isUPS(s string) (claim, ok, badLen bool) {
	if len(s) < 3 || s[0] != '1' || s[1] != 'Z' {
		return false, false, false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && (c < 'A' || c > 'Z') {
			return false, false, false
		}
	}
	if len(s) != 18 {
		return true, false, true
	}
	return true, upsCheckDigit(s[2:17]) == s[17], false
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

// impbRouted reads a raw IMpb barcode with its routing prefix, "420" +
// ZIP5, ZIP9 or ZIP11 (ZIP+4+2, the delivery point) + tracking. shape says
// the string has that form; zip is the destination when exactly one
// reading has a valid check digit: the ZIP5 or ZIP+4 (a delivery point is
// dropped: the plan routes to ZIP+4 at the finest).
func impbRouted(s string) (zip, tracking string, shape, ok bool) {
	if len(s) < 3+5+22 || s[0] != '4' || s[1] != '2' || s[2] != '0' || !allDigits(s) {
		return "", "", false, false
	}
	found := 0
	for _, zl := range [3]int{5, 9, 11} {
		if 3+zl+22 > len(s) {
			break
		}
		t := s[3+zl:]
		sh, good := isIMpbTracking(t)
		if sh {
			shape = true
		}
		if good {
			found++
			zip, tracking = s[3:3+min(zl, 9)], t
		}
	}
	if found != 1 { // none valid, or ambiguous between ZIP5+long and ZIP9+short
		return "", "", shape, false
	}
	return zip, tracking, true, true
}

// isTBA reports whether s claims to be an Amazon-style TBA id ("TBA" and
// digits only); ok says whether it is one: exactly 12 digits.
func isTBA(s string) (claim, ok bool) {
	if len(s) < 4 || s[0] != 'T' || s[1] != 'B' || s[2] != 'A' || !allDigits(s[3:]) {
		return false, false
	}
	return true, len(s) == 15
}
