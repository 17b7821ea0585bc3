// Package config loads and validates bitw's TOML configuration
// (docs/config.md; the contract is in design.md).
//
// Names and meanings follow strongSwan's swanctl.conf wherever the concept
// exists there. Validation is strict: an unknown key, a value of the wrong
// type, an invalid value or a dangling reference is an error naming the
// file and line (FILE:LINE: why), and a swanctl.conf option that bitw
// lacks is refused with the reason rather than ignored. Load reports every
// error, not only the first.
//
// A file beyond the size and nesting limits (limits.go) is refused before
// it is parsed. BurntSushi/toml parses the file; the loader then walks the
// decoded tree table by table (tree.go) and maps each key path to its line
// with a small scanner over the source (position.go), because the TOML
// library reports positions for syntax errors only.
package config
