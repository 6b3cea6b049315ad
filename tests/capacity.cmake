dsinfer_add_test(capacity_test SOURCES capacity_test.cc LIBS dsinfer_capacity LABELS cpu)
