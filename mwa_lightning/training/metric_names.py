"""Names of the logged metrics, shared by the module that logs them, the command line, the report and tests."""

from __future__ import annotations

VAL, TEST, TRAIN = "val", "test", "train"
ACC, ACC_TOP5, LOSS, ACC_BEST = "acc", "acc_top5", "loss", "acc_best"


def metric(stage: str, name: str) -> str:
    """``"<stage>/<name>"``, e.g. ``metric(VAL, ACC) == "val/acc"``."""
    return f"{stage}/{name}"


VAL_ACC = metric(VAL, ACC)  # validation top-1: what checkpoints select on and reports tabulate
TEST_ACC = metric(TEST, ACC)  # test top-1: evaluated once per run after fit (--test_after_fit)
VAL_ACC_TOP5 = metric(VAL, ACC_TOP5)
VAL_ACC_BEST = metric(VAL, ACC_BEST)  # the maximum of VAL_ACC over the epochs so far
TRAIN_LOSS = metric(TRAIN, LOSS)  # logged per step (``_step``) and per epoch (``_epoch``)
TRAIN_LOSS_EPOCH = f"{TRAIN_LOSS}_epoch"
TRAIN_LOSS_STEP = f"{TRAIN_LOSS}_step"
EPOCH = "epoch"  # Lightning's epoch scalar
THROUGHPUT = "train/samples_per_sec"  # ThroughputMonitor, all processes together (logged when there are several)
THROUGHPUT_DEVICE = "train/device/samples_per_sec"  # ThroughputMonitor, this process
LR = "lr"  # the learning rate, per AdamW parameter group: "lr/decay" and "lr/no_decay" (LearningRateMonitor)
LR_GROUPS = ("decay", "no_decay")  # the parameter groups: weights of 2+ dims with weight decay, the rest without
LR_PEAK = "model/lr_peak"  # the effective peak learning rate (after the linear scaling rule), logged once per run
PARAMS = "model/params"  # parameters of the backbone, logged once per run
FLOPS = "model/flops"  # forward FLOPs per image, logged once per run
HP_TOP1_LAST = "hparams/top1_last"  # TensorBoard's HPARAMS tab: the last epoch's validation top-1
HP_TOP1_BEST = "hparams/top1_best"  # ... and the best over epochs
