// Package migrations holds the tern migrations, embedded in the binary so
// `gatewayd migrate` needs no files on disk. tern.conf at the repository
// root lets the tern CLI run the same files.
package migrations

import "embed"

// FS holds the migration files at its root, as tern expects.
//
//go:embed *.sql
var FS embed.FS
