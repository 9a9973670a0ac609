package fieldbussim

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateCertRoundTrip(t *testing.T) {
	der, key, err := GenerateCert(CertOptions{ApplicationURI: "urn:sortgw:fieldbus-sim", Hosts: []string{"plc1.site", "10.0.0.5"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "urn:sortgw:fieldbus-sim" {
		t.Fatalf("SAN URIs %v", cert.URIs)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "plc1.site" || len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "10.0.0.5" {
		t.Fatalf("SAN hosts %v %v", cert.DNSNames, cert.IPAddresses)
	}
	if cert.PublicKeyAlgorithm != x509.RSA || key.N.BitLen() != 2048 {
		t.Fatalf("key %v %d bits", cert.PublicKeyAlgorithm, key.N.BitLen())
	}
	for _, ku := range []x509.KeyUsage{x509.KeyUsageDigitalSignature, x509.KeyUsageKeyEncipherment, x509.KeyUsageDataEncipherment, x509.KeyUsageContentCommitment} {
		if cert.KeyUsage&ku == 0 {
			t.Fatalf("key usage %b lacks %b", cert.KeyUsage, ku)
		}
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatalf("not self-signed: %v", err)
	}

	dir := t.TempDir()
	certFile, keyFile, err := WriteCertFiles(dir, "server", der, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{certFile, filepath.Join(dir, "server.der")} {
		got, err := LoadCertificate(f)
		if err != nil || string(got) != string(der) {
			t.Fatalf("LoadCertificate(%s): %v", f, err)
		}
	}
	k2, err := LoadKey(keyFile)
	if err != nil || !k2.Equal(key) {
		t.Fatalf("LoadKey: %v", err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", st.Mode(), err)
	}
	if tp := Thumbprint(der); len(tp) != 40 || strings.Trim(tp, "0123456789abcdef") != "" {
		t.Fatalf("thumbprint %q", tp)
	}
}

func TestCertErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	tests := []struct {
		name    string
		fn      func() error
		wantErr string
	}{
		{"no uri", func() error { _, _, err := GenerateCert(CertOptions{}); return err }, "no application uri"},
		{"missing cert", func() error { _, err := LoadCertificate(filepath.Join(dir, "nope.pem")); return err }, "no such file"},
		{"key block as cert", func() error { _, err := LoadCertificate(junk); return err }, "want CERTIFICATE"},
		{"junk key", func() error { _, err := LoadKey(junk); return err }, "not an RSA key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
