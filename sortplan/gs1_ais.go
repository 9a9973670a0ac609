package sortplan

import "strconv"

// The GS1 Application Identifier table, transcribed entry by entry from the
// GS1 Barcode Syntax Dictionary (github.com/gs1/gs1-syntax-dictionary, file
// gs1-syntax-dictionary.txt at commit f7e477f17d482ed1a61409719d50623c9132866d;
// the file says "Release: UNSET" and holds every AI of the 2024-06-10
// release plus the later 03, 716, 7041, 8014 and the N3-component form of
// 423/425). The dictionary is the machine-readable form of the GS1 General
// Specifications' AI table; its Apache-2.0 text is not copied here, only
// the facts a reader needs, in this package's own form:
//
//   - ais: one AI or a range, as the dictionary writes it ("3100-3105");
//     its length in digits is the length of the string.
//   - fixed: the dictionary's "*" flag, a predefined-length AI that is
//     never followed by FNC1. Every other AI ends at FNC1 (GS) or at the
//     end of the data, even when its format has one length (4307 "X2").
//   - the value format, the dictionary's components folded into one
//     length range and character set: N digits, X CSET 82, Y CSET 39, Z
//     CSET 64; a leading numeric component of a mixed format is numPrefix
//     (421 "N3 X..9": 3 digits, then up to 9 of CSET 82).
//   - check: "csum" on a leading numeric component, the GS1 mod-10 check
//     digit at that position. lint: the dictionary's other linters that
//     this reader enforces (dates, times, yes/no, csumalpha, ...; see
//     aiLint). Linters that need outside lists (ISO 3166/4217 codes, GS1
//     company prefixes, IBAN, percent-encoding, coupon layouts) are not
//     applied: they never change where a field ends, and the decision reads
//     only AIs 00, 403, 420, 421 and 92..95.
//
// TestAITableMatchesDictionary compares every AI 00..9999 against a
// second, literal transcription of the dictionary's lines in
// gs1dict_test.go, read by an independent parser; FuzzGS1 does the same
// for whole element strings.

// aiFmt is an AI's value format.
type aiFmt struct {
	min, max  uint8
	cs        uint8
	numPrefix uint8
	check     uint8
	lint      aiLint
}

// aiRow is one entry of the table.
type aiRow struct {
	ais   string // "420", "3100-3105"
	fixed bool   // predefined length: no FNC1 after it
	aiFmt
	title string // the dictionary's short title
}

func fN(l int) aiFmt                { return aiFmt{min: uint8(l), max: uint8(l), cs: csN} }
func fNv(max int) aiFmt             { return aiFmt{min: 1, max: uint8(max), cs: csN} }
func fNr(min, max int) aiFmt        { return aiFmt{min: uint8(min), max: uint8(max), cs: csN} }
func fX(l int) aiFmt                { return aiFmt{min: uint8(l), max: uint8(l), cs: cs82} }
func fXv(max int) aiFmt             { return aiFmt{min: 1, max: uint8(max), cs: cs82} }
func fXr(min, max int) aiFmt        { return aiFmt{min: uint8(min), max: uint8(max), cs: cs82} }
func (f aiFmt) csum(n int) aiFmt    { f.check = uint8(n); return f }
func (f aiFmt) num(n int) aiFmt     { f.numPrefix = uint8(n); return f }
func (f aiFmt) with(l aiLint) aiFmt { f.lint = l; return f }
func (f aiFmt) set(cs uint8) aiFmt  { f.cs = cs; return f }

// gs1AIRows is the table, in the dictionary's (lexical) order.
var gs1AIRows = []aiRow{
	{"00", true, fN(18).csum(18), "SSCC"},
	{"01", true, fN(14).csum(14), "GTIN"},
	{"02", true, fN(14).csum(14), "CONTENT"},
	{"03", true, fN(14).csum(14), "MTO GTIN"},
	{"10", false, fXv(20), "BATCH/LOT"},
	{"11", true, fN(6).with(lintYYMMD0), "PROD DATE"},
	{"12", true, fN(6).with(lintYYMMD0), "DUE DATE"},
	{"13", true, fN(6).with(lintYYMMD0), "PACK DATE"},
	{"15", true, fN(6).with(lintYYMMD0), "BEST BEFORE or BEST BY"},
	{"16", true, fN(6).with(lintYYMMD0), "SELL BY"},
	{"17", true, fN(6).with(lintYYMMD0), "USE BY or EXPIRY"},
	{"20", true, fN(2), "VARIANT"},
	{"21", false, fXv(20), "SERIAL"},
	{"22", false, fXv(20), "CPV"},
	{"235", false, fXv(28), "TPX"},
	{"240", false, fXv(30), "ADDITIONAL ID"},
	{"241", false, fXv(30), "CUST. PART No."},
	{"242", false, fNv(6), "MTO VARIANT"},
	{"243", false, fXv(20), "PCN"},
	{"250", false, fXv(30), "SECONDARY SERIAL"},
	{"251", false, fXv(30), "REF. TO SOURCE"},
	{"253", false, fXr(13, 30).num(13).csum(13), "GDTI"},
	{"254", false, fXv(20), "GLN EXTENSION COMPONENT"},
	{"255", false, fNr(13, 25).csum(13), "GCN"},
	{"30", false, fNv(8), "VAR. COUNT"},
	{"3100-3105", true, fN(6), "NET WEIGHT (kg)"},
	{"3110-3115", true, fN(6), "LENGTH (m)"},
	{"3120-3125", true, fN(6), "WIDTH (m)"},
	{"3130-3135", true, fN(6), "HEIGHT (m)"},
	{"3140-3145", true, fN(6), "AREA (m2)"},
	{"3150-3155", true, fN(6), "NET VOLUME (l)"},
	{"3160-3165", true, fN(6), "NET VOLUME (m3)"},
	{"3200-3205", true, fN(6), "NET WEIGHT (lb)"},
	{"3210-3215", true, fN(6), "LENGTH (in)"},
	{"3220-3225", true, fN(6), "LENGTH (ft)"},
	{"3230-3235", true, fN(6), "LENGTH (yd)"},
	{"3240-3245", true, fN(6), "WIDTH (in)"},
	{"3250-3255", true, fN(6), "WIDTH (ft)"},
	{"3260-3265", true, fN(6), "WIDTH (yd)"},
	{"3270-3275", true, fN(6), "HEIGHT (in)"},
	{"3280-3285", true, fN(6), "HEIGHT (ft)"},
	{"3290-3295", true, fN(6), "HEIGHT (yd)"},
	{"3300-3305", true, fN(6), "GROSS WEIGHT (kg)"},
	{"3310-3315", true, fN(6), "LENGTH (m), log"},
	{"3320-3325", true, fN(6), "WIDTH (m), log"},
	{"3330-3335", true, fN(6), "HEIGHT (m), log"},
	{"3340-3345", true, fN(6), "AREA (m2), log"},
	{"3350-3355", true, fN(6), "VOLUME (l), log"},
	{"3360-3365", true, fN(6), "VOLUME (m3), log"},
	{"3370-3375", true, fN(6), "KG PER m2"},
	{"3400-3405", true, fN(6), "GROSS WEIGHT (lb)"},
	{"3410-3415", true, fN(6), "LENGTH (in), log"},
	{"3420-3425", true, fN(6), "LENGTH (ft), log"},
	{"3430-3435", true, fN(6), "LENGTH (yd), log"},
	{"3440-3445", true, fN(6), "WIDTH (in), log"},
	{"3450-3455", true, fN(6), "WIDTH (ft), log"},
	{"3460-3465", true, fN(6), "WIDTH (yd), log"},
	{"3470-3475", true, fN(6), "HEIGHT (in), log"},
	{"3480-3485", true, fN(6), "HEIGHT (ft), log"},
	{"3490-3495", true, fN(6), "HEIGHT (yd), log"},
	{"3500-3505", true, fN(6), "AREA (in2)"},
	{"3510-3515", true, fN(6), "AREA (ft2)"},
	{"3520-3525", true, fN(6), "AREA (yd2)"},
	{"3530-3535", true, fN(6), "AREA (in2), log"},
	{"3540-3545", true, fN(6), "AREA (ft2), log"},
	{"3550-3555", true, fN(6), "AREA (yd2), log"},
	{"3560-3565", true, fN(6), "NET WEIGHT (t oz)"},
	{"3570-3575", true, fN(6), "NET VOLUME (oz)"},
	{"3600-3605", true, fN(6), "NET VOLUME (qt)"},
	{"3610-3615", true, fN(6), "NET VOLUME (gal.)"},
	{"3620-3625", true, fN(6), "VOLUME (qt), log"},
	{"3630-3635", true, fN(6), "VOLUME (gal.), log"},
	{"3640-3645", true, fN(6), "VOLUME (in3)"},
	{"3650-3655", true, fN(6), "VOLUME (ft3)"},
	{"3660-3665", true, fN(6), "VOLUME (yd3)"},
	{"3670-3675", true, fN(6), "VOLUME (in3), log"},
	{"3680-3685", true, fN(6), "VOLUME (ft3), log"},
	{"3690-3695", true, fN(6), "VOLUME (yd3), log"},
	{"37", false, fNv(8), "COUNT"},
	{"3900-3909", false, fNv(15), "AMOUNT"},
	{"3910-3919", false, fNr(4, 18), "AMOUNT"},
	{"3920-3929", false, fNv(15), "PRICE"},
	{"3930-3939", false, fNr(4, 18), "PRICE"},
	{"3940-3943", false, fN(4), "PRCNT OFF"},
	{"3950-3955", false, fN(6), "PRICE/UoM"},
	{"400", false, fXv(30), "ORDER NUMBER"},
	{"401", false, fXv(30), "GINC"},
	{"402", false, fN(17).csum(17), "GSIN"},
	{"403", false, fXv(30), "ROUTE"},
	{"410", true, fN(13).csum(13), "SHIP TO LOC"},
	{"411", true, fN(13).csum(13), "BILL TO"},
	{"412", true, fN(13).csum(13), "PURCHASE FROM"},
	{"413", true, fN(13).csum(13), "SHIP FOR LOC"},
	{"414", true, fN(13).csum(13), "LOC No."},
	{"415", true, fN(13).csum(13), "PAY TO"},
	{"416", true, fN(13).csum(13), "PROD/SERV LOC"},
	{"417", true, fN(13).csum(13), "PARTY"},
	{"420", false, fXv(20), "SHIP TO POST"},
	{"421", false, fXr(4, 12).num(3), "SHIP TO POST"},
	{"422", false, fN(3), "ORIGIN"},
	{"423", false, fNr(3, 15).with(lintTriples), "COUNTRY - INITIAL PROCESS"},
	{"424", false, fN(3), "COUNTRY - PROCESS"},
	{"425", false, fNr(3, 15).with(lintTriples), "COUNTRY - DISASSEMBLY"},
	{"426", false, fN(3), "COUNTRY - FULL PROCESS"},
	{"427", false, fXv(3), "ORIGIN SUBDIVISION"},
	{"4300", false, fXv(35), "SHIP TO COMP"},
	{"4301", false, fXv(35), "SHIP TO NAME"},
	{"4302", false, fXv(70), "SHIP TO ADD1"},
	{"4303", false, fXv(70), "SHIP TO ADD2"},
	{"4304", false, fXv(70), "SHIP TO SUB"},
	{"4305", false, fXv(70), "SHIP TO LOC"},
	{"4306", false, fXv(70), "SHIP TO REG"},
	{"4307", false, fX(2), "SHIP TO COUNTRY"},
	{"4308", false, fXv(30), "SHIP TO PHONE"},
	{"4309", false, fN(20), "SHIP TO GEO"},
	{"4310", false, fXv(35), "RTN TO COMP"},
	{"4311", false, fXv(35), "RTN TO NAME"},
	{"4312", false, fXv(70), "RTN TO ADD1"},
	{"4313", false, fXv(70), "RTN TO ADD2"},
	{"4314", false, fXv(70), "RTN TO SUB"},
	{"4315", false, fXv(70), "RTN TO LOC"},
	{"4316", false, fXv(70), "RTN TO REG"},
	{"4317", false, fX(2), "RTN TO COUNTRY"},
	{"4318", false, fXv(20), "RTN TO POST"},
	{"4319", false, fXv(30), "RTN TO PHONE"},
	{"4320", false, fXv(35), "SRV DESCRIPTION"},
	{"4321", false, fN(1).with(lintYesNo), "DANGEROUS GOODS"},
	{"4322", false, fN(1).with(lintYesNo), "AUTH TO LEAVE"},
	{"4323", false, fN(1).with(lintYesNo), "SIG REQUIRED"},
	{"4324", false, fN(10).with(lintYYMMD0HHMI), "NOT BEF DEL DT"},
	{"4325", false, fN(10).with(lintYYMMD0HHMI), "NOT AFT DEL DT"},
	{"4326", false, fN(6).with(lintYYMMDD), "REL DATE"},
	{"4330", false, fXr(6, 7).num(6).with(lintHyphen), "MAX TEMP F."},
	{"4331", false, fXr(6, 7).num(6).with(lintHyphen), "MAX TEMP C."},
	{"4332", false, fXr(6, 7).num(6).with(lintHyphen), "MIN TEMP F."},
	{"4333", false, fXr(6, 7).num(6).with(lintHyphen), "MIN TEMP C."},
	{"7001", false, fN(13), "NSN"},
	{"7002", false, fXv(30), "MEAT CUT"},
	{"7003", false, fN(10).with(lintYYMMDDHHMI), "EXPIRY TIME"},
	{"7004", false, fNv(4), "ACTIVE POTENCY"},
	{"7005", false, fXv(12), "CATCH AREA"},
	{"7006", false, fN(6).with(lintYYMMDD), "FIRST FREEZE DATE"},
	{"7007", false, fNr(6, 12).with(lintHarvest), "HARVEST DATE"},
	{"7008", false, fXv(3), "AQUATIC SPECIES"},
	{"7009", false, fXv(10), "FISHING GEAR TYPE"},
	{"7010", false, fXv(2), "PROD METHOD"},
	{"7011", false, fNr(6, 10).with(lintTestBy), "TEST BY DATE"},
	{"7020", false, fXv(20), "REFURB LOT"},
	{"7021", false, fXv(20), "FUNC STAT"},
	{"7022", false, fXv(20), "REV STAT"},
	{"7023", false, fXv(30), "GIAI - ASSEMBLY"},
	{"7030-7039", false, fXr(4, 30).num(3), "PROCESSOR # s"},
	{"7040", false, fX(4).num(1), "UIC+EXT"},
	{"7041", false, fXv(4), "UFRGT UNIT TYPE"},
	{"710-716", false, fXv(20), "NHRN PZN, CIP, CN, DRN, AIM, NDC, AIC"},
	{"7230-7239", false, fXr(3, 30), "CERT # s"},
	{"7240", false, fXv(20), "PROTOCOL"},
	{"7241", false, fN(2), "AIDC MEDIA TYPE"},
	{"7242", false, fXv(25), "VCN"},
	{"7250", false, fN(8).with(lintYYYYMMDD), "DOB"},
	{"7251", false, fN(12).with(lintYYYYMMDDHHMI), "DOB TIME"},
	{"7252", false, fN(1), "BIO SEX"},
	{"7253", false, fXv(40), "FAMILY NAME"},
	{"7254", false, fXv(40), "GIVEN NAME"},
	{"7255", false, fXv(10), "SUFFIX"},
	{"7256", false, fXv(90), "FULL NAME"},
	{"7257", false, fXv(70), "PERSON ADDR"},
	{"7258", false, fX(3), "BIRTH SEQUENCE"},
	{"7259", false, fXv(40), "BABY"},
	{"8001", false, fN(14), "DIMENSIONS"},
	{"8002", false, fXv(20), "CMT No."},
	{"8003", false, fXr(14, 30).num(14).csum(14).with(lintZero), "GRAI"},
	{"8004", false, fXv(30), "GIAI"},
	{"8005", false, fN(6), "PRICE PER UNIT"},
	{"8006", false, fN(18).csum(14), "ITIP"},
	{"8007", false, fXv(34), "IBAN"},
	{"8008", false, fNr(8, 12).with(lintProdTime), "PROD TIME"},
	{"8009", false, fXv(50), "OPTSEN"},
	{"8010", false, fXv(30).set(cs39), "CPID"},
	{"8011", false, fNv(12), "CPID SERIAL"},
	{"8012", false, fXv(20), "VERSION"},
	{"8013", false, fXv(25).with(lintCsumAlpha), "GMN"},
	{"8014", false, fXv(25).with(lintMUDI), "MUDI"},
	{"8017", false, fN(18).csum(18), "GSRN - PROVIDER"},
	{"8018", false, fN(18).csum(18), "GSRN - RECIPIENT"},
	{"8019", false, fNv(10), "SRIN"},
	{"8020", false, fXv(25), "REF No."},
	{"8026", false, fN(18).csum(14), "ITIP CONTENT"},
	{"8030", false, fXv(90).set(cs64).with(lint64), "DIGSIG"},
	{"8110", false, fXv(70), "COUPON CODE"},
	{"8111", false, fN(4), "POINTS"},
	{"8112", false, fXv(70), "COUPON POS OFFER"},
	{"8200", false, fXv(70), "PRODUCT URL"},
	{"90", false, fXv(30), "INTERNAL"},
	{"91-99", false, fXv(90), "INTERNAL"},
}

// span returns the row's first and last AI and their length in digits.
func (r *aiRow) span() (lo, hi, digits int) {
	a, b := r.ais, r.ais
	for i := 0; i < len(r.ais); i++ {
		if r.ais[i] == '-' {
			a, b = r.ais[:i], r.ais[i+1:]
		}
	}
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || len(a) != len(b) {
		return 0, -1, 0
	}
	return lo, hi, len(a)
}
