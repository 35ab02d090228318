# Two commands from a fresh clone: `make run` (dashboard + worker on 127.0.0.1:8501) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# One OpenCV: a venv made when -headless was declared still has it, and its cv2 overwrites opencv-python's.
	if $(BIN)/python -m pip show -q opencv-python-headless >/dev/null 2>&1; then \
	  $(BIN)/python -m pip uninstall --quiet -y opencv-python-headless && \
	  $(BIN)/python -m pip install --quiet --force-reinstall --no-deps 'opencv-python>=4.11,<6'; fi
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/surglens serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.decode
