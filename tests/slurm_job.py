"""train.py run the way submitit runs a job on SLURM: submitit's own signal handlers, with its `scontrol requeue`
replaced by a note in <folder>/requeued, as there is no SLURM here.

python tests/slurm_job.py <folder> <train.py overrides...>
"""

import sys
from pathlib import Path

from submitit.core.utils import DelayedSubmission, JobPaths
from submitit.slurm.slurm import SlurmJobEnvironment


class Job:
    """Stands in for Hydra's submitit launcher, whose checkpoint() resubmits the job as it was."""

    def __call__(self):
        from dlbook.train import main

        main()

    def checkpoint(self):
        return DelayedSubmission(self)


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    sys.argv = [str(Path(__file__).resolve().parents[1] / "train.py"), *sys.argv[2:]]
    environment = SlurmJobEnvironment()
    environment._requeue = lambda countdown: (folder / "requeued").write_text(f"{countdown}\n")
    job = DelayedSubmission(Job())
    job.set_timeout(timeout_min=60, max_num_timeout=3)
    environment._handle_signals(JobPaths(folder, job_id=environment.job_id), job)
    job.result()
