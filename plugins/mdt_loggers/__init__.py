"""Built-in plugin: loggers that send a run to the trackers people already use.

Each needs its tracker's package (the ``trackers`` extra installs them all);
``mdt recipe check`` names a missing one before anything runs.
"""

import mdt
from mdt_loggers.csv_logger import CsvLogger
from mdt_loggers.mlflow_logger import MlflowLogger
from mdt_loggers.tensorboard_logger import TensorBoardLogger
from mdt_loggers.wandb_logger import WandbLogger


@mdt.hookimpl
def register_components(register):
    register("logger", "tensorboard", TensorBoardLogger)
    register("logger", "mlflow", MlflowLogger)
    register("logger", "wandb", WandbLogger)
    register("logger", "csv", CsvLogger)
