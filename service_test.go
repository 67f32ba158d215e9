package main

import (
	"bytes"
	"testing"
)

// TestLogFormatOption checks -log-format and STOMPBOX_LOG_FORMAT.
func TestLogFormatOption(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string
		want    string
		wantErr bool
	}{
		{"default", nil, "", logFormatText, false},
		{"flag", []string{"-log-format", "json"}, "", logFormatJSON, false},
		{"environment", nil, "json", logFormatJSON, false},
		{"flag beats environment", []string{"-log-format=text"}, "json", logFormatText, false},
		{"unknown", []string{"-log-format", "logfmt"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "STOMPBOX_LOG_FORMAT" {
					return tt.env
				}
				return ""
			}
			c, err := parseConfig(tt.args, getenv, &bytes.Buffer{})
			if (err != nil) != tt.wantErr || c.LogFormat != tt.want {
				t.Fatalf("LogFormat %q, err %v; want %q", c.LogFormat, err, tt.want)
			}
		})
	}
}
