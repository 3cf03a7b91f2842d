module hoard.test/capigo

go 1.22
