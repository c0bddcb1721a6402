package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sessiond/sessiond/httperror"
)

// bodyRule says whether a route's JSON body may be left out.
type bodyRule bool

const (
	bodyRequired bodyRule = false // an empty body is invalid_json
	bodyOptional bodyRule = true  // an empty body leaves v as it is
)

// decode reads a JSON object body into v strictly: the right content type,
// at most the configured size, no unknown fields, right types, one value.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, rule bodyRule) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if rule == bodyOptional {
			return nil
		}
		return httperror.InvalidJSON("a JSON body is required")
	}
	if err := checkJSONType(r); err != nil {
		return err
	}
	if !utf8.Valid(body) {
		return httperror.InvalidJSON("the body is not valid UTF-8")
	}
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		// Decoding null into a struct is a no-op, which would make it an
		// empty request (a sign-in with no password, say).
		return httperror.InvalidJSON("the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return httperror.InvalidJSON("the body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return httperror.InvalidJSON("unexpected data after the JSON value")
	}
	return nil
}

// readBody reads the whole body within the size limit (413 beyond it).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, httperror.BodyTooLarge(s.cfg.MaxBodyBytes)
	case err != nil:
		return nil, httperror.InvalidBody
	}
	return body, nil
}

func checkJSONType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return httperror.UnsupportedMedia
	}
	return nil
}

// jsonError turns a decoding error into a 400 that names the problem
// without echoing the input.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return httperror.InvalidJSON("the body is not valid JSON")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return httperror.InvalidJSON("the body must be a JSON object")
		}
		return httperror.InvalidField(fmt.Sprintf("field %q has the wrong type", field))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return httperror.UnknownField(strings.TrimPrefix(err.Error(), "json: "))
	}
	return httperror.InvalidJSON("the body is not valid JSON")
}

// writeJSON answers with v as JSON. Every API answer carries user or
// session data or nothing worth caching, so none is cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	b, err := json.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"code":"internal_error","message":"internal error"}}`))
		return
	}
	b = append(b, '\n')
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// rfc3339 formats t for an answer.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func noContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
