// Package report collects the benchmark's figures, each next to its
// reference, and writes them as Markdown: the full results file
// (bench/results/<date>-<host>.md) and the summary block of
// docs/performance.md.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/dionysia/dionysia/bench/internal/measure"
)

// Row is one figure of ours next to its reference.
type Row struct {
	Section string
	Metric  string
	Unit    string
	Verb    string // fmt verb for the values, default %.2f
	Ours    measure.Summary
	Ref     measure.Summary
	RefName string // what the reference is
	// LowerIsBetter tells the reader which way the ratio should go.
	LowerIsBetter bool
	Note          string
}

// Ratio is ours over the reference, on medians; NaN without a reference.
func (r Row) Ratio() float64 {
	if !r.Ours.Valid() || !r.Ref.Valid() || r.Ref.Median == 0 {
		return math.NaN()
	}
	return r.Ours.Median / r.Ref.Median
}

// RatioText formats the ratio with which way is better.
func (r Row) RatioText() string {
	x := r.Ratio()
	if math.IsNaN(x) {
		return "—"
	}
	better := "higher is better"
	if r.LowerIsBetter {
		better = "lower is better"
	}
	return fmt.Sprintf("%.2f× (%s)", x, better)
}

func (r Row) verb() string {
	if r.Verb == "" {
		return "%.2f"
	}
	return r.Verb
}

// Report is everything one run produced.
type Report struct {
	Title    string
	Header   []string // machine and run description lines (Markdown)
	Rows     []Row
	Sections []Section // detail text per section, in order
	Notes    []string  // what was skipped or failed
}

// Section is free Markdown under a heading.
type Section struct {
	Title string
	Body  string
}

// Add appends a row.
func (r *Report) Add(row Row) { r.Rows = append(r.Rows, row) }

// Detail appends a detail section.
func (r *Report) Detail(title, body string) {
	r.Sections = append(r.Sections, Section{Title: title, Body: body})
}

// Note records something the reader must know (a skipped section, an error).
func (r *Report) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// SummaryTable renders every row as one Markdown table.
func (r *Report) SummaryTable() string {
	var b strings.Builder
	b.WriteString("| Section | Figure | Dionysia | Reference | Ours / reference |\n|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		unit := ""
		switch row.Unit {
		case "":
		case "×":
			unit = row.Unit
		default:
			unit = " " + row.Unit
		}
		ref := "—"
		if row.Ref.Valid() {
			ref = row.Ref.Format(row.verb()) + unit
		}
		if row.RefName != "" {
			ref += " (" + row.RefName + ")"
		}
		metric := row.Metric
		if row.Note != "" {
			metric += " ¹"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", row.Section, metric, row.Ours.Format(row.verb())+unit, ref, row.RatioText())
	}
	var notes []string
	for _, row := range r.Rows {
		if row.Note != "" {
			notes = append(notes, fmt.Sprintf("- ¹ %s — %s: %s", row.Section, row.Metric, row.Note))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

// Markdown renders the full results file.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	for _, h := range r.Header {
		b.WriteString(h + "\n")
	}
	b.WriteString("\nValues are `median (min–max)` over the repeated runs. Ratios are ours ÷ reference on medians. ")
	b.WriteString("Nothing here is asserted: these are measurements. Method: docs/performance.md.\n\n")
	b.WriteString("## Summary\n\n")
	b.WriteString(r.SummaryTable())
	if len(r.Notes) > 0 {
		b.WriteString("\n## Not measured / problems\n\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	for _, s := range r.Sections {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", s.Title, strings.TrimRight(s.Body, "\n"))
	}
	return b.String()
}

// Markers delimit the generated block of docs/performance.md.
const (
	BeginMarker = "<!-- bench:summary:begin -->"
	EndMarker   = "<!-- bench:summary:end -->"
)

// ReplaceBlock rewrites the part of the file at path between BeginMarker and
// EndMarker with block.
func ReplaceBlock(path, block string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	i := bytes.Index(b, []byte(BeginMarker))
	j := bytes.Index(b, []byte(EndMarker))
	if i < 0 || j < i {
		return errors.New(path + " lacks the " + BeginMarker + " … " + EndMarker + " block")
	}
	var out bytes.Buffer
	out.Write(b[:i+len(BeginMarker)])
	out.WriteString("\n" + strings.TrimRight(block, "\n") + "\n")
	out.Write(b[j:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}
