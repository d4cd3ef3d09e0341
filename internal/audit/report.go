package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r for humans: a summary line, then one row per finding.
func WriteTable(w io.Writer, r Report) error {
	scan := "complete"
	if !r.Complete {
		scan = "INCOMPLETE"
	}
	fmt.Fprintf(w, "audit %s .. %s: %d orders read (%d in the window, %d pages, %s), %d sagas, %d order details fetched\n",
		r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), r.Orders, r.InWindow, r.Pages, scan, r.Sagas, r.Details)
	if len(r.Findings) == 0 {
		_, err := fmt.Fprintln(w, "no findings: every order of fulfil's belongs to one completed purchase, and every completed purchase's order exists")
		return err
	}
	counts := r.Counts()
	var parts []string
	for _, k := range Kinds {
		if n := counts[string(k)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	fmt.Fprintf(w, "%d finding(s): %s\n\n", len(r.Findings), strings.Join(parts, ", "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tKEY\tPONUMBER\tORDERS\tSAGA\tDETAIL")
	for _, f := range r.Findings {
		saga := f.SagaStatus
		if f.SagaOrderNo != "" {
			saga += " " + f.SagaOrderNo
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Kind, dash(f.Key), dash(f.PONumber), dash(orderNos(f.Orders)), dash(saga), f.Detail)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
