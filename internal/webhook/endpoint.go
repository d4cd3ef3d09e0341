package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Endpoint is one receiver of webhooks.
type Endpoint struct {
	// URL is where events are POSTed. It may hold credentials or a token: it is never logged,
	// labelled or stored; Host and ID stand for it.
	URL string
	// ID is the first 16 hex digits of SHA-256 of URL: the consumer's name and the dead
	// letters' subject derive from it.
	ID string
	// Host is the URL's host[:port], the endpoint's label in logs, metrics and listings. Two
	// endpoints on one host are told apart by "#" and the first 6 digits of the ID.
	Host string
}

// ConsumerName is the durable consumer of the endpoint on the events stream.
func (e Endpoint) ConsumerName() string { return ConsumerPrefix + e.ID }

// ConsumerPrefix starts the name of every webhook consumer.
const ConsumerPrefix = "fulfil-webhook-"

// EndpointID is the ID of the endpoint at rawURL.
func EndpointID(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return hex.EncodeToString(sum[:])[:16]
}

// ParseEndpoints parses comma-separated URLs. A URL must be absolute, https, or http on a
// loopback host (any host with insecure). Every problem is returned, none showing more of a
// URL than its host.
func ParseEndpoints(list string, insecure bool) ([]Endpoint, error) {
	var out []Endpoint
	var errs []error
	seen := map[string]bool{}
	hosts := map[string]int{}
	for i, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			if strings.TrimSpace(list) != "" {
				errs = append(errs, fmt.Errorf("URL %d of the list is empty", i+1))
			}
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || u.Hostname() == "" {
			errs = append(errs, fmt.Errorf("URL %d of the list is not an absolute URL", i+1))
			continue
		}
		host := u.Host
		switch {
		case u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()):
			errs = append(errs, fmt.Errorf("%q is plain http on a non-loopback host; use https or set FULFIL_WEBHOOK_INSECURE=true", "http://"+host))
			continue
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("URL %d of the list (host %q): the scheme must be https (or http on loopback)", i+1, host))
			continue
		case u.Fragment != "":
			errs = append(errs, fmt.Errorf("URL %d of the list (host %q) has a #fragment", i+1, host))
			continue
		}
		if seen[raw] {
			errs = append(errs, fmt.Errorf("URL %d of the list (host %q) is listed twice", i+1, host))
			continue
		}
		seen[raw] = true
		hosts[host]++
		out = append(out, Endpoint{URL: raw, ID: EndpointID(raw), Host: host})
	}
	for i := range out {
		if hosts[out[i].Host] > 1 {
			out[i].Host += "#" + out[i].ID[:6]
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
