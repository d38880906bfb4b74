package main

import (
	"embed"
	"encoding/json"
	"html/template"
	"io"
	"time"
)

// The HTML report (--format html): one self-contained file (its style
// inline, no script, nothing fetched) that people can mail or attach to a
// ticket. The same facts as the other formats: the side-by-side rows of
// the table, then each tenant's verdicts, coloured by severity, with
// their advice, and its probe's details folded under them, as --format
// json gives them.

//go:embed providers_report.html
var providersHTMLFiles embed.FS

var providersHTML = template.Must(template.New("providers_report.html").Funcs(template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.MarshalIndent(v, "", "  ")
		return string(b), err
	},
}).ParseFS(providersHTMLFiles, "providers_report.html"))

// provHTMLPage is what the template shows.
type provHTMLPage struct {
	Made    string // when, RFC 3339 in UTC
	Version string // the gateway's version and revision
	Doc     provDocJSON
	Header  []string      // the tenants, the comparison's first row
	Rows    []provRowHTML // the comparison's other rows
}

type provRowHTML struct {
	Label string
	Cells [][]string
}

func writeProvidersHTML(w io.Writer, results []provResult, made time.Time, b build) error {
	rows := provRows(results)
	page := provHTMLPage{Made: made.UTC().Format(time.RFC3339), Version: b.version + " (" + b.revision + ")", Doc: providersDoc(results)}
	for _, c := range rows[0].cells {
		page.Header = append(page.Header, c...)
	}
	for _, r := range rows[1:] {
		if r.label == provVerdictLabel {
			continue // each tenant's verdicts are shown in full below, coloured
		}
		page.Rows = append(page.Rows, provRowHTML{Label: r.label, Cells: r.cells})
	}
	return providersHTML.Execute(w, page)
}
