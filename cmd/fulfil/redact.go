package main

import (
	"net/url"
	"strings"
)

// redactUserInfo hides passwords and tokens in comma-separated URLs.
func redactUserInfo(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		u.User = url.User("[redacted]")
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
