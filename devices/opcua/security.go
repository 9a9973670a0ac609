package opcua

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// How the server's certificate is checked (gopcua v0.8.0 checks nothing:
// it takes whatever certificate the endpoint list or the
// OpenSecureChannel response carries):
//
//  1. GetEndpoints over an unsecured discovery channel lists the server's
//     endpoints; the link keeps those with the configured policy and mode.
//  2. The certificate such an endpoint presents must be byte-identical
//     (compared by SHA-256 thumbprint) to one of TrustedServerCerts and
//     inside its validity period; otherwise the connect fails with
//     ErrUntrustedServer, naming the thumbprint so that a technician can
//     compare it with the server's and add the file.
//  3. The secure channel is opened with the trusted copy of that
//     certificate. OpenSecureChannel is encrypted with its public key, so
//     only the holder of the matching private key learns the client nonce
//     and can derive the session keys: an impostor presenting a trusted
//     certificate fails the handshake.

// security is the loaded key material of a secured link.
type security struct {
	mode    ua.MessageSecurityMode
	policy  string // URI
	cert    []byte // client certificate, DER
	key     *rsa.PrivateKey
	trusted [][]byte // DER
}

func loadSecurity(c *Config) (*security, error) {
	if c.Security == SecurityNone {
		return nil, nil
	}
	s := &security{
		mode:   ua.MessageSecurityModeFromString(c.Security),
		policy: ua.FormatSecurityPolicyURI(c.Policy),
	}
	certs, err := loadCerts(c.CertFile)
	if err != nil {
		return nil, err
	}
	s.cert = certs[0]
	if s.key, err = loadKey(c.KeyFile); err != nil {
		return nil, err
	}
	pub, err := x509.ParseCertificate(s.cert)
	if err != nil {
		return nil, fmt.Errorf("client certificate %s: %w", c.CertFile, err)
	}
	if pk, ok := pub.PublicKey.(*rsa.PublicKey); !ok || !pk.Equal(&s.key.PublicKey) {
		return nil, fmt.Errorf("client certificate %s does not match key %s", c.CertFile, c.KeyFile)
	}
	for _, f := range c.TrustedServerCerts {
		certs, err := loadCerts(f)
		if err != nil {
			return nil, err
		}
		s.trusted = append(s.trusted, certs...)
	}
	return s, nil
}

// loadCerts reads one DER certificate or any number of PEM ones.
func loadCerts(file string) ([][]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	var out [][]byte
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, blk.Bytes)
		}
	}
	if len(out) == 0 {
		out = [][]byte{b} // DER
	}
	for _, der := range out {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", file, err)
		}
	}
	return out, nil
}

// loadKey reads an RSA key: PEM or DER, PKCS#1 or PKCS#8.
func loadKey(file string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
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
		return nil, fmt.Errorf("private key %s: not an RSA key in PKCS#1 or PKCS#8", file)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key %s: %T, want RSA", file, k)
	}
	return rk, nil
}

// Thumbprint is the SHA-256 of a DER certificate in hex, as the link logs
// it.
func Thumbprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// checkTrusted returns the trusted copy of der, or ErrUntrustedServer.
func (s *security) checkTrusted(der []byte, now time.Time) ([]byte, error) {
	for _, t := range s.trusted {
		if !bytes.Equal(t, der) {
			continue
		}
		c, err := x509.ParseCertificate(t)
		if err != nil {
			return nil, fmt.Errorf("server certificate %s: %w", Thumbprint(der), err)
		}
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, fmt.Errorf("server certificate %s valid %s..%s: %w", Thumbprint(der),
				c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), ErrUntrustedServer)
		}
		return t, nil
	}
	return nil, fmt.Errorf("server certificate sha256 %s: %w", Thumbprint(der), ErrUntrustedServer)
}

// options returns the gopcua options of one connect: for a secured link it
// asks the server for its endpoints and checks the certificate first.
func (l *Link) clientOptions(ctx context.Context) ([]opcua.Option, error) {
	opts := []opcua.Option{
		// One owner of reconnection: this link's Run loop.
		opcua.AutoReconnect(false),
		// The link bounds its own calls with ctx; gopcua's timeout is the
		// publish requests' (with keep-alives every KeepAlive).
		opcua.RequestTimeout(max(10*time.Second, 4*l.cfg.KeepAlive)),
		opcua.DialTimeout(l.cfg.Timeout),
		opcua.SessionTimeout(time.Minute),
		opcua.SessionName("sortgw " + l.cfg.Name),
		opcua.ApplicationName("sortgw"),
		opcua.Lifetime(time.Hour),
	}
	if l.sec == nil {
		return append(opts, opcua.SecurityPolicy(ua.SecurityPolicyURINone), opcua.SecurityMode(ua.MessageSecurityModeNone)), nil
	}
	eps, err := opcua.GetEndpoints(ctx, l.cfg.Endpoint, opcua.DialTimeout(l.cfg.Timeout), opcua.RequestTimeout(l.cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("get endpoints: %w", err)
	}
	var errs []error
	for _, ep := range eps {
		if ep.SecurityPolicyURI != l.sec.policy || ep.SecurityMode != l.sec.mode {
			continue
		}
		trusted, err := l.sec.checkTrusted(ep.ServerCertificate, time.Now())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return append(opts,
			opcua.SecurityPolicy(l.sec.policy),
			opcua.SecurityMode(l.sec.mode),
			opcua.Certificate(l.sec.cert),
			opcua.PrivateKey(l.sec.key),
			opcua.AuthAnonymous(),
			opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous),
			opcua.RemoteCertificate(trusted),
		), nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no endpoint with policy %s and mode %s: %w", l.cfg.Policy, l.cfg.Security, ErrNoEndpoint)
	}
	return nil, errors.Join(errs...)
}
