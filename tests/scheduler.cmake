dsinfer_add_test(scheduler_test SOURCES scheduler_test.cc LIBS dsinfer_scheduler LABELS cpu)
