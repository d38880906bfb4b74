package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/todo-gateway/todo-gateway/providers"
)

// The comparison laid out for a terminal (a plain-text table and a
// summary line) and for GitHub (a markdown table).

// writeProvidersTable aligns the rows in columns for a terminal: a label column,
// then one column per tenant, each at most width characters wide; longer
// values wrap at spaces (words longer than the column are cut), and the
// continuation of a wrapped line is indented.
func writeProvidersTable(w io.Writer, rows []provRow, width int) error {
	if len(rows) == 0 {
		return nil
	}
	labelW := 0
	for _, r := range rows {
		labelW = max(labelW, utf8.RuneCountInString(r.label))
	}
	ncol := len(rows[0].cells)
	colW := make([]int, ncol)
	for _, r := range rows {
		for c, lines := range r.cells {
			for _, l := range lines {
				colW[c] = max(colW[c], min(width, utf8.RuneCountInString(l)))
			}
		}
	}
	var b strings.Builder
	emit := func(label string, cells []string) {
		line := provPad(label, labelW)
		for c, s := range cells {
			line += "  " + provPad(s, colW[c])
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	for i, r := range rows {
		wrapped := make([][]string, ncol)
		height := 0
		for c, lines := range r.cells {
			for _, l := range lines {
				wrapped[c] = append(wrapped[c], provWrap(l, colW[c])...)
			}
			height = max(height, len(wrapped[c]))
		}
		for h := range height {
			label := ""
			if h == 0 {
				label = r.label
			}
			cells := make([]string, ncol)
			for c := range ncol {
				if h < len(wrapped[c]) {
					cells[c] = wrapped[c][h]
				}
			}
			emit(label, cells)
		}
		if i == 0 { // under the header
			rules := make([]string, ncol)
			for c := range ncol {
				rules[c] = strings.Repeat("-", colW[c])
			}
			emit(strings.Repeat("-", labelW), rules)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func provPad(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// provWrap breaks s into lines of at most width runes, at spaces where it can;
// continuation lines are indented by two spaces so that wrapped items
// (verdicts, documents) stay distinguishable.
func provWrap(s string, width int) []string {
	const indent = "  "
	var lines []string
	cur, limit := "", width
	flush := func() {
		lines = append(lines, cur)
		cur, limit = indent, width
	}
	for _, word := range strings.Fields(s) {
		for {
			curN, wordN := utf8.RuneCountInString(cur), utf8.RuneCountInString(word)
			sep := 0
			if strings.TrimSpace(cur) != "" {
				sep = 1
			}
			if curN+sep+wordN <= limit {
				if sep == 1 {
					cur += " "
				}
				cur += word
				break
			}
			if strings.TrimSpace(cur) != "" {
				flush()
				continue
			}
			// A word longer than a whole line (a URL): cut it, after a
			// '/' when one falls in the second half of the line, so paths
			// break where a reader expects.
			room := limit - curN
			r := []rune(word)
			cut := room
			for i := room - 1; i >= room/2; i-- {
				if r[i] == '/' {
					cut = i + 1
					break
				}
			}
			cur += string(r[:cut])
			word = string(r[cut:])
			flush()
		}
	}
	if strings.TrimSpace(cur) != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

func writeProvidersSummary(w io.Writer, results []provResult) error {
	var broken []string
	for _, r := range results {
		if !providers.CanWork(r.verdicts) {
			broken = append(broken, r.settings.Tenant)
		}
	}
	var err error
	switch {
	case len(broken) == 0 && len(results) == 1:
		_, err = fmt.Fprintln(w, "\nthe tenant can work")
	case len(broken) == 0:
		_, err = fmt.Fprintf(w, "\nall %d tenants can work\n", len(results))
	default:
		_, err = fmt.Fprintf(w, "\n%d of %d tenants cannot work: %s\n", len(broken), len(results), strings.Join(broken, ", "))
	}
	return err
}

// writeProvidersMarkdown writes a GitHub table: lines within a cell become
// <br>, and characters that would end a cell or start HTML are escaped.
func writeProvidersMarkdown(w io.Writer, rows []provRow) error {
	if len(rows) == 0 {
		return nil
	}
	var b strings.Builder
	cell := func(lines []string) string {
		esc := make([]string, len(lines))
		for i, l := range lines {
			l = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(l)
			esc[i] = l
		}
		return strings.Join(esc, "<br>")
	}
	head := rows[0]
	b.WriteString("| |")
	for _, c := range head.cells {
		b.WriteString(" **" + cell(c) + "** |")
	}
	b.WriteString("\n|---|")
	for range head.cells {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows[1:] {
		b.WriteString("| " + r.label + " |")
		for _, c := range r.cells {
			b.WriteString(" " + cell(c) + " |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
