package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// tokenProbe is how many leading characters of a token index it in the
// scanner; tokens are random there, so a probe names one token or none.
const tokenProbe = 12

// scanner finds full tokens and secrets in log lines. Tokens are many, so
// they are found through an index of their first characters, one lookup
// per position of a line; the secrets are few and searched for directly.
type scanner struct {
	tokens  map[string][]string
	secrets []string
}

func newScanner(tokens, secrets []string) *scanner {
	s := &scanner{tokens: map[string][]string{}}
	for _, t := range tokens {
		if len(t) < tokenProbe {
			s.secrets = append(s.secrets, t)
			continue
		}
		s.tokens[t[:tokenProbe]] = append(s.tokens[t[:tokenProbe]], t)
	}
	for _, x := range secrets {
		if x != "" {
			s.secrets = append(s.secrets, x)
		}
	}
	return s
}

// leak says what a line gave away, without repeating it.
type leak struct {
	File string
	Line int
	What string // "token" or "secret"
}

// line returns what a line leaks: "token", "secret" or "".
func (s *scanner) line(l string) string {
	for i := 0; i+tokenProbe <= len(l); i++ {
		for _, t := range s.tokens[l[i:i+tokenProbe]] {
			if strings.HasPrefix(l[i:], t) {
				return "token"
			}
		}
	}
	for _, x := range s.secrets {
		if strings.Contains(l, x) {
			return "secret"
		}
	}
	return ""
}

// scan reads r line by line and returns the leaks and the number of lines.
func (s *scanner) scan(name string, r io.Reader) ([]leak, int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var leaks []leak
	n := 0
	for {
		l, err := br.ReadString('\n')
		if len(l) > 0 {
			n++
			if what := s.line(l); what != "" {
				leaks = append(leaks, leak{File: name, Line: n, What: what})
			}
		}
		if err == io.EOF {
			return leaks, n, nil
		}
		if err != nil {
			return leaks, n, fmt.Errorf("scan %s: %w", name, err)
		}
	}
}

// scanFiles scans every file and in-memory text for leaks.
func (s *scanner) scanFiles(files []string, texts map[string]string) ([]leak, int, error) {
	var all []leak
	total := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, 0, err
		}
		leaks, n, err := s.scan(f, fh)
		fh.Close()
		if err != nil {
			return nil, 0, err
		}
		all = append(all, leaks...)
		total += n
	}
	for name, text := range texts {
		leaks, n, err := s.scan(name, strings.NewReader(text))
		if err != nil {
			return nil, 0, err
		}
		all = append(all, leaks...)
		total += n
	}
	return all, total, nil
}
