module github.com/dionysia/dionysia/migrations

go 1.26.8
