package opcua

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// certKey makes a self-signed RSA certificate for an OPC UA application
// (the application URI goes in the SAN, as OPC UA wants) and writes it and
// its key as PEM into dir. pkcs8 picks the key format.
func certKey(t testing.TB, dir, name string, notAfter time.Time, pkcs8 bool) (certFile, keyFile string, der []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	uri, _ := url.Parse("urn:sortgw:test:" + name)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sortgw test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
		DNSNames:              []string{"localhost"},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, name+".crt.pem")
	keyFile = filepath.Join(dir, name+".key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	var kb []byte
	typ := "RSA PRIVATE KEY"
	if pkcs8 {
		typ = "PRIVATE KEY"
		if kb, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			t.Fatal(err)
		}
	} else {
		kb = x509.MarshalPKCS1PrivateKey(key)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, der
}

func TestLoadSecurity(t *testing.T) {
	dir := t.TempDir()
	year := time.Now().Add(365 * 24 * time.Hour)
	c1, k1, _ := certKey(t, dir, "client1", year, false)
	c2, k2, _ := certKey(t, dir, "client2", year, true)
	srv, _, srvDER := certKey(t, dir, "server", year, false)
	old, _, oldDER := certKey(t, dir, "expired", time.Now().Add(-time.Minute), false)
	other, _, otherDER := certKey(t, dir, "other", year, false)

	cfg := func(cert, key string) *Config {
		return &Config{Security: SecuritySignAndEncrypt, Policy: PolicyBasic256Sha256, CertFile: cert, KeyFile: key, TrustedServerCerts: []string{srv, old}}
	}
	for _, tc := range []struct {
		name, cert, key string
		ok              bool
	}{
		{"pkcs1", c1, k1, true},
		{"pkcs8", c2, k2, true},
		{"mismatched key", c1, k2, false},
		{"missing key", c1, filepath.Join(dir, "nope"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadSecurity(cfg(tc.cert, tc.key))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if !tc.ok {
				return
			}
			if len(s.trusted) != 2 {
				t.Fatalf("%d trusted", len(s.trusted))
			}
			if got, err := s.checkTrusted(srvDER, time.Now()); err != nil || len(got) == 0 {
				t.Fatalf("trusted server refused: %v", err)
			}
			if _, err := s.checkTrusted(otherDER, time.Now()); !errors.Is(err, ErrUntrustedServer) {
				t.Fatalf("untrusted server: %v", err)
			}
			if _, err := s.checkTrusted(oldDER, time.Now()); !errors.Is(err, ErrUntrustedServer) {
				t.Fatalf("expired server cert: %v", err)
			}
		})
	}
	_ = other
}
