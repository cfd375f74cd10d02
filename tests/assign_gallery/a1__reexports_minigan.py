EXPECT = {"lost": {"dense_forward:y": 2}, "message": "imported from the installed minigan package"}

from minigan.functional import dense_forward  # noqa: E402,F401 - the point of this mutant
