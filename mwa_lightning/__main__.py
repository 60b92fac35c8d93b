"""``python -m mwa_lightning {fit,validate,test,predict} --config FILE``"""

from mwa_lightning.cli import main

if __name__ == "__main__":
    main()
