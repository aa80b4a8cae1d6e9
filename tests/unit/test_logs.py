import json
import logging

from agent.logs import setup_logging


def test_json_lines_format(capsys):
    setup_logging("INFO", "json")
    logging.getLogger("agent.p2p").info("Card exchanged with %s", "worker-1")
    logging.getLogger("agent.p2p").debug("not shown at INFO")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    rec = json.loads(err[0])
    assert rec["level"] == "INFO" and rec["logger"] == "agent.p2p" and rec["msg"] == "Card exchanged with worker-1"
    assert rec["ts"].endswith("Z")


def test_text_format_one_line_per_event(capsys):
    setup_logging("WARNING", "text")
    logging.getLogger("agent").warning("Connection to %s timed out", "/ip4/1.2.3.4/tcp/9")
    logging.getLogger("agent").info("hidden")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "WARNING agent: Connection to /ip4/1.2.3.4/tcp/9 timed out" in err[0]


def test_libp2p_is_quiet_unless_debug():
    setup_logging("INFO", "text")
    assert logging.getLogger("libp2p").getEffectiveLevel() > logging.ERROR
    setup_logging("DEBUG", "text")
    assert logging.getLogger("libp2p").getEffectiveLevel() == logging.DEBUG
    setup_logging("INFO", "text")
