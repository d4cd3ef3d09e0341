package partnerclient

// Stats is stats for the external tests, which count the requests a Client has sent; it is not
// part of the package's API.
type Stats = stats

// Stats returns c.stats().
func (c *Client) Stats() Stats { return c.stats() }
