package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is a problem in a policy file, located by file, line and field path
// (for example "spec.process.matchPaths[0].path").
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList holds every problem found in one pass, so a user sees all of them
// at once instead of fixing one per reload.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// maxErrors bounds what one file reports: the first hundred say what is
// wrong, and a broken generator's million more would only flood the log.
const maxErrors = 100

// errs collects located errors for one file.
type errs struct {
	file string
	list ErrorList
}

func (c *errs) add(line int, field, format string, args ...any) {
	c.list = append(c.list, &Error{File: c.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	slices.SortStableFunc(c.list, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	if n := len(c.list); n > maxErrors {
		c.list = append(c.list[:maxErrors], &Error{File: c.file, Msg: fmt.Sprintf("%d more errors not shown", n-maxErrors)})
	}
	return c.list
}
