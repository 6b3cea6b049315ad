dsinfer_add_test(scheduler_test SOURCES scheduler_test.cc LIBS dsinfer_scheduler LABELS scheduler cpu)
dsinfer_add_test(scheduler_step_share_test SOURCES scheduler_step_share_test.cc
                 LIBS dsinfer_scheduler LABELS scheduler cpu)
dsinfer_add_test(scheduler_draft_test SOURCES scheduler_draft_test.cc
                 LIBS dsinfer_scheduler LABELS scheduler cpu)
