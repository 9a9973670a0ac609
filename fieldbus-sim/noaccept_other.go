//go:build !linux

package fieldbussim

import "errors"

// noAcceptListener needs Linux's accept-queue behaviour (see noaccept_linux.go).
type noAcceptListener struct{}

func listenNoAccept(addr string) (*noAcceptListener, error) {
	return nil, errors.New("never-accept listener " + addr + ": only on Linux")
}

func (l *noAcceptListener) close() {}
