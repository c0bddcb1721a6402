package web

import (
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"path"
	"time"

	"github.com/sessiond/sessiond/audit"
)

func (p *Pages) parseTemplates() error {
	funcs := template.FuncMap{
		"ago":        ago,
		"until":      until,
		"clock":      clock,
		"iso":        func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"device":     device,
		"event":      eventText,
		"plural":     plural,
		"eventClass": eventClass,
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("web: parsing %s: %w", n, err)
		}
		p.pages[base[:len(base)-len(".html")]] = t
	}
	return nil
}

// ago says how long before now t was, in words: "just now", "5 minutes
// ago", "3 days ago".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return span(d, "just now", "%s ago")
}

// until says how long after now t is: "in 5 minutes".
func until(t, now time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return span(d, "in a moment", "in %s")
}

func span(d time.Duration, tiny, format string) string {
	var n int
	var unit string
	switch {
	case d < time.Minute:
		return tiny
	case d < time.Hour:
		n, unit = int(d/time.Minute), "minute"
	case d < 48*time.Hour:
		n, unit = int(d/time.Hour), "hour"
	case d < 60*24*time.Hour:
		n, unit = int(math.Round(d.Hours()/24)), "day"
	default:
		n, unit = int(math.Round(d.Hours()/24/30)), "month"
	}
	return fmt.Sprintf(format, plural(n, unit))
}

// clock is t as people read it, in UTC: "26 Nov 2026, 14:05 UTC".
func clock(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

// plural is "1 session", "2 sessions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// device names a browser on an OS: "Chrome on Linux".
func device(browser, os string) string {
	switch {
	case browser == "" && os == "":
		return "Unknown browser"
	case os == "":
		return browser
	case browser == "":
		return "A browser on " + os
	}
	return browser + " on " + os
}

func num(v any) int {
	if f, ok := v.(float64); ok {
		return int(f)
	}
	if i, ok := v.(int); ok {
		return i
	}
	return 0
}

// eventText describes an audit event to its user.
func eventText(e audit.Event) string {
	switch e.Type {
	case audit.SignedIn:
		return "Signed in"
	case audit.NewDevice:
		return "Signed in from a new device: " + device(e.Browser, e.OS)
	case audit.SignedOut:
		return "Signed out"
	case audit.SignedOutEverywhere:
		if b, _ := e.Data["except_current"].(bool); b {
			return "Signed out of all other sessions (" + plural(num(e.Data["sessions_ended"]), "session") + " ended)"
		}
		return "Signed out everywhere (" + plural(num(e.Data["sessions_ended"]), "session") + " ended)"
	case audit.SessionRevoked:
		return "Signed out a session from the list of devices"
	case audit.PasswordChanged:
		return "Password changed; " + plural(num(e.Data["sessions_ended"]), "other session") + " signed out"
	case audit.PasswordReset:
		return "Password reset with an email link; " + plural(num(e.Data["sessions_ended"]), "session") + " signed out"
	case audit.SessionRevokedByAdmin:
		return "A session was ended by an administrator"
	case audit.SessionsRevokedByAdmin:
		return "An administrator signed you out everywhere (" + plural(num(e.Data["sessions_ended"]), "session") + ")"
	case audit.Reauthenticated:
		return "Confirmed your password to continue"
	case audit.HijackSuspected:
		s, _ := e.Data["session_browser"].(string)
		o, _ := e.Data["session_os"].(string)
		return "A session of " + device(s, o) + " was used from another browser and was signed out: " + device(e.Browser, e.OS)
	case audit.IPChanged:
		return "A session was used from a new network address"
	case audit.EmailChangeRequested:
		s, _ := e.Data["new_email"].(string)
		return "Asked to change your email address to " + s
	case audit.EmailChanged:
		s, _ := e.Data["new_email"].(string)
		return "Email address changed to " + s + "; " + plural(num(e.Data["sessions_ended"]), "other session") + " signed out"
	case audit.LockedOut:
		s := "Account locked after too many failed sign-in attempts"
		if u, ok := e.Data["locked_until"].(string); ok {
			if t, err := time.Parse(time.RFC3339, u); err == nil {
				s += " until " + clock(t)
			}
		}
		return s
	}
	return e.Type
}

// eventClass marks the events a user should look at twice.
func eventClass(e audit.Event) string {
	switch e.Type {
	case audit.NewDevice, audit.LockedOut, audit.SessionRevokedByAdmin, audit.SessionsRevokedByAdmin, audit.PasswordReset,
		audit.HijackSuspected, audit.EmailChangeRequested, audit.EmailChanged:
		return "event notable"
	}
	return "event"
}
