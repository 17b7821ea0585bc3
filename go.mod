module github.com/bitw-dev/bitw

go 1.26.0

tool github.com/usbarmory/tamago/cmd/tamago

require (
	github.com/BurntSushi/toml v1.6.0
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
	gvisor.dev/gvisor v0.0.0-20260413194555-9680d69bf798
)

require (
	github.com/google/btree v1.1.2 // indirect
	github.com/usbarmory/tamago v1.26.0 // indirect
	golang.org/x/exp v0.0.0-20231110203233-9a3e6036ecaa // indirect
	golang.org/x/time v0.12.0 // indirect
)
