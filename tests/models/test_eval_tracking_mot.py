"""MOTChallenge files: our reader + TrackEval adapter against TrackEval's own MOT17 evaluation of the same files."""
import numpy as np
import pytest

from metrics.tracking import evaluate_tracking
from models.eval_tracking import read_mot

# frame, id, x, y, w, h, flag, class, visibility. Class 7 (static person) rows are flagged 0: ignored.
GT = """\
1,1,10,10,20,40,1,1,1
1,2,100,10,20,40,1,1,1
1,9,200,50,20,40,0,7,1
2,1,12,10,20,40,1,1,1
2,2,104,10,20,40,1,1,1
2,9,200,50,20,40,0,7,1
3,1,14,10,20,40,1,1,1
3,2,108,10,20,40,1,1,0.5
4,1,16,10,20,40,1,1,1
4,2,112,10,20,40,1,1,1
5,1,18,10,20,40,1,1,1
"""
# Tracker 5 follows gt 1 throughout; gt 2 is tracked as 6, then 8 after a switch; 7 sits on the
# ignored static person (removed, not a false positive); 4 is a false positive in frame 5.
RESULTS = """\
1,5,10,10,20,40,0.9,-1,-1,-1
1,6,101,11,20,40,0.9,-1,-1,-1
1,7,201,50,20,40,0.8,-1,-1,-1
2,5,13,10,20,40,0.9,-1,-1,-1
2,6,104,10,20,40,0.9,-1,-1,-1
2,7,200,51,20,40,0.8,-1,-1,-1
3,5,14,10,20,40,0.9,-1,-1,-1
4,5,16,11,20,40,0.9,-1,-1,-1
4,8,112,10,20,40,0.9,-1,-1,-1
5,5,18,10,20,40,0.9,-1,-1,-1
5,4,300,300,20,40,0.7,-1,-1,-1
"""


def _trackeval_mot17(tmp_path):
    trackeval = pytest.importorskip("trackeval")
    seq = tmp_path / "gt" / "MOT17-train" / "SEQ-01"
    (seq / "gt").mkdir(parents=True)
    (seq / "gt" / "gt.txt").write_text(GT)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ-01\nseqLength=5\n")
    (tmp_path / "gt" / "seqmaps").mkdir()
    (tmp_path / "gt" / "seqmaps" / "MOT17-train.txt").write_text("name\nSEQ-01\n")
    trk = tmp_path / "trackers" / "MOT17-train" / "ours" / "data"
    trk.mkdir(parents=True)
    (trk / "SEQ-01.txt").write_text(RESULTS)
    quiet = {"PRINT_CONFIG": False}
    evaluator = trackeval.Evaluator(quiet | {"PRINT_RESULTS": False, "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False,
                                             "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "LOG_ON_ERROR": None})
    dataset = trackeval.datasets.MotChallenge2DBox(quiet | {"GT_FOLDER": str(tmp_path / "gt"),
                                                            "TRACKERS_FOLDER": str(tmp_path / "trackers"),
                                                            "OUTPUT_FOLDER": str(tmp_path / "out")})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
    results, _ = evaluator.evaluate([dataset], metrics)
    return results["MotChallenge2DBox"]["ours"]["SEQ-01"]["pedestrian"]


def test_mot_files_score_as_trackeval_scores_them(tmp_path):
    (tmp_path / "gt.txt").write_text(GT)
    (tmp_path / "res.txt").write_text(RESULTS)
    gt = read_mot(tmp_path / "gt.txt", ground_truth=True)
    pred = read_mot(tmp_path / "res.txt", num_frames=len(gt))
    ours = evaluate_tracking(gt, pred)
    ref = _trackeval_mot17(tmp_path)
    assert (ours.ignored_gt, ours.removed_predictions) == (2, 2)
    assert ours.gt_objects == 9 and ours.false_positives == 1 and ours.id_switches == 1
    assert ours.matches == ref["CLEAR"]["CLR_TP"] and ours.false_positives == ref["CLEAR"]["CLR_FP"]
    assert ours.id_switches == ref["CLEAR"]["IDSW"]
    assert ours.mota == pytest.approx(ref["CLEAR"]["MOTA"])
    assert ours.idf1 == pytest.approx(ref["Identity"]["IDF1"])
    assert ours.hota == pytest.approx(float(np.mean(ref["HOTA"]["HOTA"])))
    # by hand: 8 of 9 boxes matched (gt 2 missed in frame 3), FP 1, one switch (6 -> 8)
    assert ours.mota == pytest.approx(1 - (1 + 1 + 1) / 9)


def test_flags_are_read_only_from_ground_truth(tmp_path):
    (tmp_path / "res.txt").write_text("1,3,0,0,10,10,0,-1,-1,-1\n")  # confidence 0 in a results file
    assert read_mot(tmp_path / "res.txt")[0].ignore is None
    assert read_mot(tmp_path / "res.txt", ground_truth=True)[0].ignore.tolist() == [True]
