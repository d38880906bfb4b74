package providers

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	// maxResponseBytes caps every document read from an authorization server
	// (metadata, JWKS, introspection answers).
	maxResponseBytes = 1 << 20

	// requestTimeout bounds one outbound HTTP exchange even when the injected
	// client has no timeout of its own.
	requestTimeout = 10 * time.Second
)

// sharedClient lets every provider built without WithHTTPClient share one
// connection pool.
var sharedClient = sync.OnceValue(DefaultHTTPClient)

// DefaultHTTPClient is the client used when none is injected: bounded dial,
// TLS and header times, and no more redirects than a metadata host needs.
func DefaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	tr.ResponseHeaderTimeout = requestTimeout
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{
		Timeout:   requestTimeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("stopped after 3 redirects")
			}
			return nil
		},
	}
}

// noDowngrade returns a copy of c that refuses redirects from https to
// http: a JWKS fetched in the clear could be swapped on the way.
func noDowngrade(c *http.Client) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("refusing a redirect from https to %s", req.URL.Scheme)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}
