package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// code128Widths are the bar/space widths of the Code 128 symbols 0..106
// (ISO/IEC 15417): bar first, six elements of 11 modules; 106, the stop,
// has seven (13 modules).
var code128Widths = [107]string{
	"212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
	"221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
	"221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
	"212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
	"231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
	"231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
	"314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
	"112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
	"111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
	"214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
	"114131", "311141", "411131", "211412", "211214", "211232", "2331112",
}

const (
	code128StartB = 104
	code128Stop   = 106
)

// ErrCode128 is returned for text Code 128 set B cannot carry.
var ErrCode128 = errors.New("code 128: only printable ASCII (32..126)")

// code128Symbols encodes text in code set B: start, data, check, stop.
// The check symbol is (start + sum of position * value) mod 103.
func code128Symbols(text string) ([]int, error) {
	syms := make([]int, 0, len(text)+3)
	syms = append(syms, code128StartB)
	sum := code128StartB
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c < 32 || c > 126 {
			return nil, fmt.Errorf("%w: byte %#x at %d", ErrCode128, c, i)
		}
		v := int(c) - 32
		syms = append(syms, v)
		sum += (i + 1) * v
	}
	return append(syms, sum%103, code128Stop), nil
}

// code128Modules renders symbols as element widths, bar first.
func code128Modules(syms []int) []int {
	var w []int
	for _, s := range syms {
		for _, r := range code128Widths[s] {
			w = append(w, int(r-'0'))
		}
	}
	return w
}

// code128Decode reads element widths (bar first) back to text, checking
// the start, the check symbol and the stop.
func code128Decode(widths []int) (string, error) {
	if len(widths) < 6*2+7 || (len(widths)-7)%6 != 0 {
		return "", errors.New("code 128: wrong element count")
	}
	var vals []int
	for i := 0; i < len(widths)-7; i += 6 {
		var b strings.Builder
		for _, x := range widths[i : i+6] {
			b.WriteString(strconv.Itoa(x))
		}
		v := -1
		for k, p := range code128Widths[:106] {
			if p == b.String() {
				v = k
				break
			}
		}
		if v < 0 {
			return "", fmt.Errorf("code 128: no symbol %s", b.String())
		}
		vals = append(vals, v)
	}
	var stop strings.Builder
	for _, x := range widths[len(widths)-7:] {
		stop.WriteString(strconv.Itoa(x))
	}
	if stop.String() != code128Widths[code128Stop] {
		return "", errors.New("code 128: no stop")
	}
	if vals[0] != code128StartB {
		return "", errors.New("code 128: not code set B")
	}
	sum := vals[0]
	data := vals[1 : len(vals)-1]
	for i, v := range data {
		sum += (i + 1) * v
	}
	if sum%103 != vals[len(vals)-1] {
		return "", errors.New("code 128: bad check symbol")
	}
	out := make([]byte, len(data))
	for i, v := range data {
		if v > 94 {
			return "", fmt.Errorf("code 128: symbol %d is not a set B character", v)
		}
		out[i] = byte(v + 32)
	}
	return string(out), nil
}

// Code128SVG draws text as a Code 128 barcode in SVG: module x pixels
// wide, h high, with a quiet zone of 10 modules each side.
func Code128SVG(text string, module, h int) (string, error) {
	syms, err := code128Symbols(text)
	if err != nil {
		return "", err
	}
	w := code128Modules(syms)
	total := 20
	for _, x := range w {
		total += x
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="code128" width="%d" height="%d" viewBox="0 0 %d %d" shape-rendering="crispEdges">`,
		total*module, h, total, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`, total, h)
	x := 10
	for i, e := range w {
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect x="%d" width="%d" height="%d"/>`, x, e, h)
		}
		x += e
	}
	b.WriteString(`</svg>`)
	return b.String(), nil
}
