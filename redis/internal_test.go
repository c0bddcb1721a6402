package redis

import (
	"testing"
	"time"
)

func TestEsc(t *testing.T) {
	for in, want := range map[string]string{
		"0123abcdef":  "0123abcdef",
		"user-ü":      "user-ü",
		"a{b}:c%d":    "a%7Bb%7D%3Ac%25d",
		"%7B":         "%257B", // never the same as "{"
		"":            "",
		"{}":          "%7B%7D",
		"x:y":         "x%3Ay",
		"plain.name_": "plain.name_",
	} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMillisUp(t *testing.T) {
	base := time.UnixMilli(1_800_000_000_000)
	for _, c := range []struct {
		t    time.Time
		want int64
	}{
		{base, 1_800_000_000_000},
		{base.Add(time.Microsecond), 1_800_000_000_001},
		{base.Add(999 * time.Microsecond), 1_800_000_000_001},
		{base.Add(time.Millisecond), 1_800_000_000_001},
	} {
		if got := millisUp(c.t); got != c.want {
			t.Errorf("millisUp(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}

func TestSplitMember(t *testing.T) {
	for in, ok := range map[string]bool{"u1:s1": true, "s1:s1": true, ":s1": false, "u1:": false, "u1": false, "": false} {
		if _, _, got := splitMember(in); got != ok {
			t.Errorf("splitMember(%q) ok = %v, want %v", in, got, ok)
		}
	}
}

func TestTakePrefix(t *testing.T) {
	for _, tc := range []struct {
		in, rest, prefix string
		ok, err          bool
	}{
		{in: "redis://127.0.0.1:6379/0", rest: "redis://127.0.0.1:6379/0"},
		{in: "redis://h:1/0?prefix=app%3A", rest: "redis://h:1/0", prefix: "app:", ok: true},
		{in: "redis://u:pw@h:1?addr=h:2&prefix=t1:&addr=h:3", rest: "redis://u:pw@h:1?addr=h%3A2&addr=h%3A3", prefix: "t1:", ok: true},
		{in: "redis://h:1?prefix=", rest: "redis://h:1", prefix: "", ok: true},
		{in: "redis://h:1?prefix=a&prefix=b", err: true},
		{in: "redis://h:1?prefix=%zz", err: true},
	} {
		rest, prefix, ok, err := takePrefix(tc.in)
		if (err != nil) != tc.err || rest != tc.rest || prefix != tc.prefix || ok != tc.ok {
			t.Errorf("takePrefix(%q) = %q, %q, %v, %v; want %q, %q, %v, error %v",
				tc.in, rest, prefix, ok, err, tc.rest, tc.prefix, tc.ok, tc.err)
		}
	}
}
