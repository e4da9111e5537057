module github.com/candado-dev/candado/client

go 1.24.0
