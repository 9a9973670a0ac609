package fieldbussim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CertOptions describes a self-signed OPC UA application instance
// certificate.
type CertOptions struct {
	// ApplicationURI goes into the subjectAltName as a URI; OPC UA peers
	// compare it with the application description's URI.
	ApplicationURI string
	// Hosts are DNS names or IP addresses for the subjectAltName
	// (default "localhost", "127.0.0.1").
	Hosts []string
	// CommonName is the subject CN (default "sortgw fieldbus-sim").
	CommonName string
	// ValidFor is the validity from now (default one year).
	ValidFor time.Duration
	// Bits is the RSA key size (default 2048, what Basic256Sha256 asks for).
	Bits int
}

// GenerateCert makes a self-signed RSA certificate usable as an OPC UA
// application instance certificate (server or client) and returns it as DER
// with its key.
func GenerateCert(o CertOptions) (certDER []byte, key *rsa.PrivateKey, err error) {
	if o.ApplicationURI == "" {
		return nil, nil, errors.New("generate certificate: no application uri")
	}
	uri, err := url.Parse(o.ApplicationURI)
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate: application uri %q: %w", o.ApplicationURI, err)
	}
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"localhost", "127.0.0.1"}
	}
	if o.CommonName == "" {
		o.CommonName = "sortgw fieldbus-sim"
	}
	if o.ValidFor == 0 {
		o.ValidFor = 365 * 24 * time.Hour
	}
	if o.Bits == 0 {
		o.Bits = 2048
	}
	key, err = rsa.GenerateKey(rand.Reader, o.Bits)
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate: rsa key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate: serial: %w", err)
	}
	now := time.Now()
	tmpl := x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.CommonName, Organization: []string{"sortgw"}},
		NotBefore:    now.Add(-time.Hour), // tolerate clock skew between peers
		NotAfter:     now.Add(o.ValidFor),
		// OPC UA Part 6 asks for these on application instance certificates.
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	certDER, err = x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate: %w", err)
	}
	return certDER, key, nil
}

// WriteCertFiles writes certDER and key into dir as <name>.pem (certificate,
// PEM), <name>.der (certificate, DER, what many OPC UA tools import) and
// <name>.key (PKCS#1 RSA key, PEM, mode 0600). It returns the PEM
// certificate's and the key's paths.
func WriteCertFiles(dir, name string, certDER []byte, key *rsa.PrivateKey) (certFile, keyFile string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("write certificate: %w", err)
	}
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+".key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".der"), certDER, 0o644); err != nil {
		return "", "", fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("write key: %w", err)
	}
	return certFile, keyFile, nil
}

// LoadCertificate reads a certificate file, PEM or DER, and returns its DER.
func LoadCertificate(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("load certificate %s: pem block %q, want CERTIFICATE", path, blk.Type)
		}
		der = blk.Bytes
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", path, err)
	}
	return der, nil
}

// LoadKey reads an RSA private key file: PEM (PKCS#1 or PKCS#8) or DER.
func LoadKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		der = blk.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("load key %s: not an RSA key in PKCS#1 or PKCS#8: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load key %s: %T, want an RSA key", path, k)
	}
	return rk, nil
}

// Thumbprint is the SHA-1 of a DER certificate in hex, as OPC UA tools show it.
func Thumbprint(certDER []byte) string {
	sum := sha1.Sum(certDER)
	return hex.EncodeToString(sum[:])
}
