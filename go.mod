module github.com/fulfil/fulfil

go 1.26.8
